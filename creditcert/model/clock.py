"""Report time is Beijing time: issue days, rate-limit days and report-number months all use it."""

from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
