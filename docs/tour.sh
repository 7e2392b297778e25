#!/usr/bin/env bash
# The five-minute tour (`make demo`): a demo city on generated data, end to end.
# Everything lands under out/demo/; go on from there with `creditcert --home out/demo/shenyang …`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
HOME_DIR=out/demo/shenyang
AS_OF=$(TZ=Asia/Shanghai date +%F)

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

rm -rf "$HOME_DIR"
step creditcert init --city 210100 --name 沈阳市 --name-en Shenyang --home "$HOME_DIR"
export CREDITCERT_HOME="$HOME_DIR"
step creditcert sample generate --subjects 20000 --records 200000 --seed 2025
step creditcert code check "$(creditcert sample subjects --limit 1)" 91350203M0001QKT19 \
  || echo "(exit $?: the second is a legal pre-2016 code that fails its check character)"
step creditcert purposes list
BUSY=$(creditcert sample subjects --with-records --limit 1)
CLEAN=$(creditcert sample subjects --clean --limit 1)
step creditcert lookup "$CLEAN" --purpose bidding
step creditcert lookup "$BUSY" --domains market-regulation,taxation,transport --years 3
step creditcert sample export --domain market-regulation --rows 2000 --bad-rows 25 \
  --encoding gbk --out out/demo/market-regulation-export.csv
quarantined() { echo "(exit $?: some rows were quarantined; the file above says which and why)"; }
step creditcert ingest --domain market-regulation out/demo/market-regulation-export.csv || quarantined
echo "(ingesting the same file again adds nothing:)"
step creditcert ingest --domain market-regulation out/demo/market-regulation-export.csv || quarantined
# The market-supervision register export brings a new enterprise and a status change.
printf '统一社会信用代码,企业名称,成立日期,登记状态\n%s,沈阳新开张商贸有限公司,2026-05-01,存续\n%s,%s,2015-03-01,吊销，未注销\n' \
  91210106BE2BKBRQ9Q "$BUSY" "$(creditcert lookup "$BUSY" --domains taxation --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["subject"]["name"])')" \
  > out/demo/register-update.csv
step creditcert register import out/demo/register-update.csv
step creditcert lookup 91210106BE2BKBRQ9Q --purpose financing
step creditcert data status

# Issue signed reports: keys first (a root certifies a short-lived signing key).
step creditcert keys init
step creditcert keys list
REPAIRED=$(creditcert sample subjects --with-records --limit 200 | while read -r c; do
  creditcert lookup "$c" --all --json | python3 -c 'import json,sys
d=json.load(sys.stdin); sys.exit(0 if any(r["repaired"] for x in d["domains"] for r in x["records"]) else 1)' \
  && { echo "$c"; break; }; done)
step creditcert report "$CLEAN" --purpose bidding --out out/demo/report-clean.pdf \
  --json out/demo/report-clean.json
step creditcert report "$REPAIRED" --purpose financing --out out/demo/report-with-records.pdf \
  --json out/demo/report-with-records.json
step creditcert report "$BUSY" --all --out out/demo/report-all-52.pdf
step pdfsig out/demo/report-all-52.pdf

# A reviewer checks what they were handed: the PDF, the QR text, or the typed number.
step creditcert verify out/demo/report-all-52.pdf
python3 - <<'PY'
data = bytearray(open("out/demo/report-all-52.pdf", "rb").read())
data[len(data) // 2] ^= 1   # one flipped bit somewhere in the body
open("out/demo/report-tampered.pdf", "wb").write(bytes(data))
PY
step creditcert verify out/demo/report-tampered.pdf || echo "(exit $?: rejected, as it should be)"
NUMBER=$(python3 -c 'import json; print(json.load(open("out/demo/report-with-records.json"))["number"])')
step creditcert verify --number "$NUMBER"
CLEAN_NUMBER=$(python3 -c 'import json; print(json.load(open("out/demo/report-clean.json"))["number"])')
step creditcert revoke "$CLEAN_NUMBER" --reason "issued for the wrong purpose"
step creditcert verify out/demo/report-clean.pdf || echo "(exit $?: a revoked report is rejected)"

# Mutual recognition (报告互认): 伊春市 (its own 35-domain catalog) issues, 茂名市 (our 52) verifies
# under an agreement mapping 33 of Yichun's domains onto ours.
for city in "230700 伊春市 Yichun yichun" "440900 茂名市 Maoming maoming"; do
  set -- $city
  rm -rf "out/demo/$4"
  creditcert init --city "$1" --name "$2" --name-en "$3" --home "out/demo/$4" >/dev/null
  [ "$4" = yichun ] && cp sample_data/catalog-yichun.toml out/demo/yichun/catalog.toml  # its own domains
  creditcert --home "out/demo/$4" sample generate --subjects 5000 --records 30000 --seed "$1" >/dev/null
  creditcert --home "out/demo/$4" keys init >/dev/null
done
# Partners online: each city's service publishes its bundle; each side adds the other by URL and
# pinned root and syncs over HTTP (conditional GET). Ports are picked free; both stop at the end.
root_of() { creditcert --home "out/demo/$1" keys list --json | python3 -c 'import json,sys; print(next(k["sha256"] for k in json.load(sys.stdin)["keys"] if k["role"]=="root"))'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
YC_URL="http://127.0.0.1:$(free_port)"; MM_URL="http://127.0.0.1:$(free_port)"
creditcert --home out/demo/yichun serve --port "${YC_URL##*:}" 2>out/demo/yichun-serve.log &
YC_PID=$!
creditcert --home out/demo/maoming serve --port "${MM_URL##*:}" 2>out/demo/maoming-serve.log &
MM_PID=$!
trap 'kill $YC_PID $MM_PID 2>/dev/null || true' EXIT
python3 - "$YC_URL" "$MM_URL" <<'PY'
import sys, time, httpx
for base in sys.argv[1:]:
    for _ in range(240):
        try:
            if httpx.get(base + "/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        sys.exit(f"{base} did not start (out/demo/*-serve.log)")
PY
step creditcert --home out/demo/yichun partner export --out out/demo/yichun-bundle.cose
step creditcert --home out/demo/maoming partner export --out out/demo/maoming-bundle.cose
step creditcert --home out/demo/maoming partner add 230700 --url "$YC_URL" --fingerprint "$(root_of yichun)"
step creditcert --home out/demo/maoming partner sync
step creditcert --home out/demo/maoming agreement add sample_data/agreement-maoming-yichun.toml
step creditcert --home out/demo/yichun partner add 440900 --url "$MM_URL" --fingerprint "$(root_of maoming)"
step creditcert --home out/demo/yichun partner sync
step creditcert --home out/demo/yichun agreement add sample_data/agreement-yichun-maoming.toml
YC=$(creditcert --home out/demo/yichun sample subjects --with-records --limit 1)
step creditcert --home out/demo/yichun report "$YC" --all --out out/demo/yichun-report.pdf
step creditcert --home out/demo/maoming verify out/demo/yichun-report.pdf
step creditcert --home out/demo/maoming partner list
step creditcert --home out/demo/maoming agreement show 230700
# 异地申请、立等取证: an enterprise of 伊春市 asks at 茂名市's counter; 茂名市 forwards a signed
# application, 伊春市 issues under its own key, 茂名市 verifies the PDF and hands it over.
YC2=$(creditcert --home out/demo/yichun sample subjects --with-records --limit 2 | tail -n 1)  # $YC had its report today
step creditcert --home out/demo/maoming partner apply "$YC2" --out out/demo/remote-report.pdf \
  --domain market-regulation --domain taxation --domain human-resources --domain construction-market
step creditcert --home out/demo/yichun verify out/demo/remote-report.pdf
# A revocation in 伊春市 reaches 茂名市 at its next sync: revoke re-exports 伊春市's published
# bundle (its root key is at hand here); 茂名市's service fetches it within its sync_interval
# (300 s), `partner sync` at once.
REMOTE=$(creditcert --home out/demo/maoming verify out/demo/remote-report.pdf --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["number"])')
step creditcert --home out/demo/yichun revoke "$REMOTE" --reason "demo: revoked at the issuing city"
step creditcert --home out/demo/maoming partner sync
step creditcert --home out/demo/maoming verify out/demo/remote-report.pdf || echo "(exit $?: revoked in 伊春市, refused in 茂名市)"
kill $YC_PID $MM_PID 2>/dev/null || true; wait $YC_PID $MM_PID 2>/dev/null || true

# The city's web service: screenshots of its pages from a short-lived `creditcert serve`.
step python tools/screenshots.py --home "$HOME_DIR" --out out/demo --code "$BUSY" \
  --pdf out/demo/report-all-52.pdf

cat <<EOT

Demo city: $HOME_DIR (config, catalog, data, keys, registry, quarantine);
partner cities: out/demo/yichun (issues) and out/demo/maoming (recognises 33 domains), synced over
HTTP; out/demo/remote-report.pdf was applied for at 茂名市 and issued by 伊春市 (then revoked).
Reports: out/demo/report-with-records.pdf (some records 已修复), out/demo/report-all-52.pdf,
         out/demo/report-clean.pdf (revoked by the tour), out/demo/report-tampered.pdf
Try next:
  source .venv/bin/activate            # puts creditcert on PATH
  export CREDITCERT_HOME=$HOME_DIR
  creditcert lookup $BUSY --all --json | less
  creditcert domains show market-regulation
  creditcert code check 91350203M0001QKT19
  creditcert report $BUSY --purpose listing --lang en
  creditcert verify out/demo/report-with-records.pdf
  pdftoppm -png -r 80 out/demo/report-all-52.pdf /tmp/page   # and look at the pages

The city's web service (verify a report, self-service issuance, the API):
  make serve                           # then open http://127.0.0.1:8000/verify
  (sign in on http://127.0.0.1:8000/ with any registered code, e.g. $BUSY; 演示 demo only)
Screenshots of its pages: out/demo/service-*.png
EOT
