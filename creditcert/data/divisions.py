"""County-level divisions (GB/T 2260) of the cities creditcert ships sample data for.

Sample data draws subjects' admin divisions from here so generated codes look like a real city's.
"""

from __future__ import annotations

CITIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "210100": (
        "沈阳市",
        "Shenyang",
        {
            "210102": "和平区",
            "210103": "沈河区",
            "210104": "大东区",
            "210105": "皇姑区",
            "210106": "铁西区",
            "210111": "苏家屯区",
            "210112": "浑南区",
            "210113": "沈北新区",
            "210114": "于洪区",
            "210115": "辽中区",
            "210123": "康平县",
            "210124": "法库县",
            "210181": "新民市",
        },
    ),
    "230700": (
        "伊春市",
        "Yichun",
        {
            "230717": "伊美区",
            "230718": "乌翠区",
            "230719": "友好区",
            "230722": "嘉荫县",
            "230723": "汤旺县",
            "230724": "丰林县",
            "230725": "大箐山县",
            "230726": "南岔县",
            "230751": "金林区",
            "230781": "铁力市",
        },
    ),
    "440900": (
        "茂名市",
        "Maoming",
        {
            "440902": "茂南区",
            "440904": "电白区",
            "440981": "高州市",
            "440982": "化州市",
            "440983": "信宜市",
        },
    ),
    "540100": (
        "拉萨市",
        "Lhasa",
        {
            "540102": "城关区",
            "540103": "堆龙德庆区",
            "540104": "达孜区",
            "540121": "林周县",
            "540122": "当雄县",
            "540123": "尼木县",
            "540124": "曲水县",
            "540127": "墨竹工卡县",
        },
    ),
}


def districts(city_code: str) -> dict[str, str]:
    """The county-level divisions of a city; a city we have no list for is its own division."""
    if city_code in CITIES:
        return CITIES[city_code][2]
    return {city_code: city_code}
