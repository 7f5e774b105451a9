#!/usr/bin/env bash
# End-to-end on a real Kubernetes (kind) with the real Envoy: build the image, helm install the chart,
# apply the example organisation (examples/contoso) with small HTTPS stand-ins for the Exchange
# servers and Dovecot for POP3/IMAP4, then check through Envoy:
#   OWA same-site proxy, OWA silent and manual redirects, ActiveSync 451 + X-MS-Location, EWS
#   cross-site proxy, the affinity cookie and failover when the pinned backend is deleted, IMAP logins
#   reaching the right site, and status conditions (Accepted=False for a bad object, Programmed=True);
#   then a gateway rollout while an ActiveSync Ping long poll is open (the old pod drains: the Ping
#   gets its answer), and a front-door certificate renewal served without a pod restart (file SDS).
# Needs: a running Docker engine, kind, helm, kubectl, curl, openssl, python3, node (repo deps installed).
# When one is missing it prints which and exits 0 with "skipped": it never reports a pass it did not see.
# Run: npm run test:e2e:kind      (KEEP_CLUSTER=1 keeps the cluster for debugging; CLUSTER=name to pick one)
set -euo pipefail

cd "$(dirname "$0")/../.."

skip() {
  echo "kind e2e: skipped: $*"
  exit 0
}
for tool in docker kind helm kubectl curl openssl python3 node; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
docker info >/dev/null 2>&1 || skip "docker has no running engine (docker info failed)"

CLUSTER=${CLUSTER:-cas-gateway-e2e}
IMAGE=cas-gateway:e2e
SYS_NS=cas-system
ORG_NS=mail
BACKENDS_NS=cas-backends
RELEASE=cas-gateway
GW_SVC=${RELEASE}-gateway
PW='Passw0rd!'
WORK=$(mktemp -d)
PF_PID=""
FAILED=0
PASSED=0
CREATED_CLUSTER=0

log() { printf '\n== %s\n' "$*"; }
cleanup() {
  local rc=$?
  if [[ -n "$PF_PID" ]]; then kill "$PF_PID" 2>/dev/null || true; fi
  if [[ $rc -ne 0 || $FAILED -ne 0 ]] && [[ $CREATED_CLUSTER -eq 1 ]]; then
    echo "--- diagnostics ---"
    kubectl get pods -A -o wide 2>/dev/null || true
    kubectl -n "$SYS_NS" logs deploy/${RELEASE}-operator --tail=80 2>/dev/null || true
    kubectl -n "$SYS_NS" logs deploy/${GW_SVC} -c sidecar --tail=80 2>/dev/null || true
    kubectl -n "$SYS_NS" logs deploy/${GW_SVC} -c envoy --tail=80 2>/dev/null || true
    kubectl -n "$ORG_NS" get adsites,clientaccessservers,virtualdirectories,mailboxdatabases,organizationrelationships 2>/dev/null | head -40 || true
  fi
  if [[ $CREATED_CLUSTER -eq 1 && "${KEEP_CLUSTER:-0}" != "1" ]]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

# ---- cluster, image ----
log "kind cluster $CLUSTER"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  timeout 300 kind create cluster --name "$CLUSTER" --wait 180s
  CREATED_CLUSTER=1
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

log "build $IMAGE"
timeout 900 docker build -t "$IMAGE" .
timeout 300 kind load docker-image "$IMAGE" --name "$CLUSTER"

# ---- certificates, secrets, directory ----
log "certificates and secrets"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mail.contoso.com" \
  -addext "subjectAltName=DNS:mail.contoso.com,DNS:usa.contoso.com,DNS:europe.contoso.com,DNS:*.contoso.com" \
  -keyout "$WORK/front.key" -out "$WORK/front.crt" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=*.${BACKENDS_NS}.svc.cluster.local" \
  -addext "subjectAltName=DNS:*.${BACKENDS_NS}.svc.cluster.local,DNS:*.contoso.com" \
  -keyout "$WORK/backend.key" -out "$WORK/backend.crt" 2>/dev/null
for ns in "$SYS_NS" "$ORG_NS"; do kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; done
kubectl -n "$SYS_NS" create secret tls cas-gateway-tls --cert="$WORK/front.crt" --key="$WORK/front.key" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$SYS_NS" create secret generic cas-gateway-affinity --from-literal=key="$(openssl rand -base64 48)" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$SYS_NS" create configmap cas-gateway-mailboxes --from-file=mailboxes.csv=examples/contoso/mailboxes.csv --dry-run=client -o yaml | kubectl apply -f -

# ---- backends ----
log "Exchange stand-ins and Dovecot"
node test/e2e/backends/overlay.mjs "$WORK" "$IMAGE"
kubectl apply -f <(sed -n '1,/^---$/p' "$WORK/backends.yaml" | sed '$d') >/dev/null # the namespace first
kubectl -n "$BACKENDS_NS" create secret tls backend-tls --cert="$WORK/backend.crt" --key="$WORK/backend.key" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f "$WORK/backends.yaml"
while read -r d; do
  [[ -n "$d" ]] && kubectl -n "$BACKENDS_NS" rollout status "deploy/$d" --timeout=300s
done <"$WORK/backend-names.txt"

# ---- chart ----
log "helm install"
timeout 600 helm upgrade --install "$RELEASE" charts/cas-gateway -n "$SYS_NS" \
  --set image.repository=cas-gateway --set image.tag=e2e --set image.pullPolicy=Never \
  --set watch.namespace="$ORG_NS" \
  --set tls.secretName=cas-gateway-tls \
  --set mailboxDirectory.configMap=cas-gateway-mailboxes \
  --set affinity.keySecretName=cas-gateway-affinity \
  --set gateway.mailProxy.frontDoorHost=mail.contoso.com \
  --set gateway.service.type=ClusterIP \
  --set gateway.replicas=1
kubectl -n "$SYS_NS" rollout status deploy/${RELEASE}-operator --timeout=300s

log "apply the organisation"
kubectl apply -f "$WORK/org.yaml" >/dev/null
kubectl -n "$SYS_NS" rollout status deploy/${GW_SVC} --timeout=300s

# ---- status conditions ----
log "status conditions"
if kubectl -n "$ORG_NS" wait --for=condition=Accepted adsites,clientaccessservers,virtualdirectories,mailboxdatabases --all --timeout=180s >/dev/null; then
  pass "every object Accepted=True"
else
  fail "not every object is Accepted=True"
fi
if kubectl -n "$ORG_NS" wait --for=condition=Programmed adsites,clientaccessservers,virtualdirectories,mailboxdatabases --all --timeout=240s >/dev/null; then
  pass "every object Programmed=True (the Envoy fleet ACKed the topology)"
else
  fail "not every object turned Programmed=True"
fi
kubectl -n "$ORG_NS" get adsites # printer columns, for the log
kubectl -n "$ORG_NS" apply -f - >/dev/null <<'EOF'
apiVersion: casgateway.io/v1alpha1
kind: VirtualDirectory
metadata:
  name: e2e-dangling
spec:
  server: no-such-server
  service: Owa
  internalUrl: https://nowhere.contoso.com/owa
EOF
if kubectl -n "$ORG_NS" wait --for=condition=ResolvedRefs=false virtualdirectory/e2e-dangling --timeout=60s >/dev/null; then
  pass "dangling reference → ResolvedRefs=False"
else
  fail "dangling reference did not get ResolvedRefs=False"
fi
if kubectl -n "$ORG_NS" get events --field-selector involvedObject.name=e2e-dangling,reason=UnknownServer -o name | grep -q .; then
  pass "Warning event recorded for the dangling reference"
else
  fail "no UnknownServer event for e2e-dangling"
fi
kubectl -n "$ORG_NS" delete virtualdirectory e2e-dangling >/dev/null

# ---- traffic through Envoy ----
# port_forward: (re)start the port-forward to the gateway Service (it follows one pod: after a
# rollout it must be started again) and wait until HTTPS answers through it.
port_forward() {
  if [[ -n "$PF_PID" ]]; then kill "$PF_PID" 2>/dev/null || true; fi
  kubectl -n "$SYS_NS" port-forward "svc/$GW_SVC" 18443:443 18080:80 18143:143 >>"$WORK/pf.log" 2>&1 &
  PF_PID=$!
  for _ in $(seq 1 60); do
    if curl -sk -o /dev/null --max-time 2 --resolve usa.contoso.com:18443:127.0.0.1 https://usa.contoso.com:18443/; then return 0; fi
    sleep 1
  done
  return 1
}

log "port-forward to the gateway"
port_forward || fail "port-forward: no HTTPS answer through the gateway within 60 s"

# request NAME EXPECTED_STATUS HOST PATH [curl args...]: fetches, keeps headers/body in $WORK/NAME.*
request() {
  local name=$1 expected=$2 host=$3 path=$4
  shift 4
  local code
  : >"$WORK/$name.headers"
  : >"$WORK/$name.body"
  code=$(curl -sk --max-time 15 -o "$WORK/$name.body" -D "$WORK/$name.headers" -w '%{http_code}' \
    --resolve "$host:18443:127.0.0.1" "https://$host:18443$path" "$@") || code=000
  if [[ "$code" == "$expected" ]]; then
    pass "$name: HTTP $code"
    return 0
  fi
  fail "$name: HTTP $code, expected $expected ($(head -c 200 "$WORK/$name.body" 2>/dev/null | tr '\n' ' '))"
  return 1
}
# The first value of a response header ('' when absent; never fails, so set -e is safe).
header() { { grep -i "^$2:" "$WORK/$1.headers" 2>/dev/null || true; } | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
expect_header() {
  local name=$1 h=$2 re=$3 v
  v=$(header "$name" "$h")
  if [[ "$v" =~ $re ]]; then pass "$name: $h: $v"; else fail "$name: $h is '$v', expected /$re/"; fi
}
expect_body() {
  local name=$1 re=$2
  if grep -Eq "$re" "$WORK/$name.body"; then pass "$name: body matches /$re/"; else fail "$name: body does not match /$re/"; fi
}
basic() { printf '%s' "$1:$PW" | base64 | tr -d '\n'; }

log "OWA same-site proxy (alice, mailbox in usa, via usa.contoso.com)"
rm -f "$WORK/jar"
if request owa-local 200 usa.contoso.com /owa/ -H "Authorization: Basic $(basic alice@contoso.com)" -c "$WORK/jar" -b "$WORK/jar"; then
  expect_header owa-local x-backend '^usa-cas0[12]$'
  expect_header owa-local set-cookie '^cas-affinity='
fi
FIRST=$(header owa-local x-backend)

log "affinity: the cookie keeps alice on $FIRST"
for i in 1 2 3; do
  if request "owa-pinned-$i" 200 usa.contoso.com /owa/ -H "Authorization: Basic $(basic alice@contoso.com)" -c "$WORK/jar" -b "$WORK/jar"; then
    expect_header "owa-pinned-$i" x-backend "^${FIRST}\$"
  fi
done

log "OWA silent redirect (frank, mailbox in europe, via usa.contoso.com: Silent)"
if request owa-silent 302 usa.contoso.com /owa/ -H "X-AnchorMailbox: frank@contoso.com"; then
  expect_header owa-silent location '^https://europe\.contoso\.com/owa'
fi

log "OWA manual redirect (alice via europe.contoso.com: Manual → page with a link)"
if request owa-manual 200 europe.contoso.com /owa/ -H "X-AnchorMailbox: alice@contoso.com"; then
  expect_body owa-manual 'https://usa\.contoso\.com/owa'
  if [[ -n "$(header owa-manual x-backend)" ]]; then fail "owa-manual: answered by a backend, expected the gateway's page"; else pass "owa-manual: answered by the gateway"; fi
fi

log "ActiveSync 451 (frank via usa.contoso.com)"
if request eas-451 451 usa.contoso.com "/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=E2E1&DeviceType=SmartPhone" \
  -X POST -H "Authorization: Basic $(basic frank@contoso.com)" -H "MS-ASProtocolVersion: 14.1" -H "Content-Type: application/vnd.ms-sync.wbxml" --data-binary ''; then
  expect_header eas-451 x-ms-location '^https://europe\.contoso\.com/Microsoft-Server-ActiveSync'
fi

log "EWS cross-site proxy (frank via usa.contoso.com → europe)"
if request ews-proxy 200 usa.contoso.com /EWS/Exchange.asmx -X POST -H "Authorization: Basic $(basic frank@contoso.com)" \
  -H "Content-Type: text/xml; charset=utf-8" --data-binary '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>'; then
  expect_header ews-proxy x-backend '^europe-cas0[12]$'
fi

log "failover: delete alice's pinned backend ($FIRST)"
if [[ -n "$FIRST" ]]; then
  kubectl -n "$BACKENDS_NS" delete deployment "exch-$FIRST" --wait=true --timeout=120s >/dev/null
  kubectl -n "$BACKENDS_NS" delete service "exch-$FIRST" >/dev/null
  OTHER=""
  for _ in $(seq 1 45); do
    : >"$WORK/owa-failover.headers"
    code=$(curl -sk --max-time 10 -o "$WORK/fo.body" -D "$WORK/owa-failover.headers" -w '%{http_code}' --resolve usa.contoso.com:18443:127.0.0.1 \
      https://usa.contoso.com:18443/owa/ -H "Authorization: Basic $(basic alice@contoso.com)" -c "$WORK/jar" -b "$WORK/jar") || code=000
    b=$(header owa-failover x-backend)
    if [[ "$code" == 200 && -n "$b" && "$b" != "$FIRST" ]]; then OTHER=$b; break; fi
    sleep 2
  done
  if [[ -n "$OTHER" ]]; then
    pass "failover: alice now served by $OTHER"
    expect_header owa-failover set-cookie '^cas-affinity='
  else
    fail "failover: alice was not moved off $FIRST within 90 s"
  fi
else
  fail "failover: no first backend to delete"
fi

log "IMAP4 logins reach the mailbox's site (through Envoy → sidecar mail proxy → Dovecot)"
if python3 - "$PW" <<'EOF'; then pass "IMAP: alice → Site-usa, frank → Site-europe"; else fail "IMAP logins did not reach the right sites"; fi
import imaplib, sys
pw = sys.argv[1]
ok = True
for user, site in (("alice@contoso.com", "usa"), ("frank@contoso.com", "europe")):
    c = imaplib.IMAP4("127.0.0.1", 18143, timeout=20)
    typ, _ = c.login(user, pw)
    typ, boxes = c.list()
    names = b" ".join(boxes).decode(errors="replace")
    print(f"{user}: {names}")
    if f"Site-{site}" not in names:
        print(f"expected Site-{site} for {user}")
        ok = False
    c.logout()
sys.exit(0 if ok else 1)
EOF

log "rollout during an ActiveSync long poll (alice's Ping, held 45 s by her server)"
# The Ping goes through the port-forward to the current gateway pod; the rollout replaces that pod.
# Its preStop hook drains Envoy and waits, so the open Ping must still get its answer (200 from the
# backend) instead of a cut connection.
OLD_POD=$(kubectl -n "$SYS_NS" get pods -l app.kubernetes.io/component=gateway -o jsonpath='{.items[0].metadata.name}')
curl -sk --max-time 150 -o "$WORK/ping.body" -D "$WORK/ping.headers" -w '%{http_code}' --resolve usa.contoso.com:18443:127.0.0.1 \
  -X POST "https://usa.contoso.com:18443/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=E2E2&DeviceType=SmartPhone" \
  -H "Authorization: Basic $(basic alice@contoso.com)" -H "MS-ASProtocolVersion: 14.1" -H "Content-Type: application/vnd.ms-sync.wbxml" \
  --data-binary '' >"$WORK/ping.code" 2>"$WORK/ping.err" &
PING_PID=$!
sleep 5
kubectl -n "$SYS_NS" rollout restart "deploy/$GW_SVC" >/dev/null
kubectl -n "$SYS_NS" rollout status "deploy/$GW_SVC" --timeout=300s
if [[ -n "$(kubectl -n "$SYS_NS" get pod "$OLD_POD" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null)" ]]; then
  pass "rollout: the old pod $OLD_POD is draining (Terminating) while the Ping is open"
else
  fail "rollout: the old pod $OLD_POD was already gone while the Ping was open"
fi
wait "$PING_PID" || true
PING_CODE=$(cat "$WORK/ping.code" 2>/dev/null || echo 000)
if [[ "$PING_CODE" == 200 ]] && grep -q 'Ping answered after' "$WORK/ping.body"; then
  pass "rollout: the open Ping was answered ($(cat "$WORK/ping.body"))"
else
  fail "rollout: the open Ping got HTTP $PING_CODE ($(cat "$WORK/ping.err" 2>/dev/null)) instead of its answer"
fi
port_forward || fail "port-forward after the rollout: no HTTPS answer within 60 s"

log "front-door certificate renewal without a restart (file-based SDS)"
serial_served() {
  openssl s_client -connect 127.0.0.1:18443 -servername usa.contoso.com </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
POD=$(kubectl -n "$SYS_NS" get pods -l app.kubernetes.io/component=gateway --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
RESTARTS=$(kubectl -n "$SYS_NS" get pod "$POD" -o jsonpath='{.status.containerStatuses[?(@.name=="envoy")].restartCount}')
BEFORE=$(serial_served)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mail.contoso.com" \
  -addext "subjectAltName=DNS:mail.contoso.com,DNS:usa.contoso.com,DNS:europe.contoso.com,DNS:*.contoso.com" \
  -keyout "$WORK/front2.key" -out "$WORK/front2.crt" 2>/dev/null
WANT=$(openssl x509 -in "$WORK/front2.crt" -noout -serial | cut -d= -f2)
kubectl -n "$SYS_NS" create secret tls cas-gateway-tls --cert="$WORK/front2.crt" --key="$WORK/front2.key" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
NOW=$BEFORE
# The kubelet refreshes Secret volumes on its sync period (about a minute), then Envoy's watch fires.
for _ in $(seq 1 60); do
  NOW=$(serial_served)
  if [[ "$NOW" == "$WANT" ]]; then break; fi
  sleep 3
done
AFTER_POD=$(kubectl -n "$SYS_NS" get pods -l app.kubernetes.io/component=gateway --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}')
AFTER_RESTARTS=$(kubectl -n "$SYS_NS" get pod "$POD" -o jsonpath='{.status.containerStatuses[?(@.name=="envoy")].restartCount}' 2>/dev/null || echo gone)
if [[ "$NOW" == "$WANT" && "$AFTER_POD" == "$POD" && "$AFTER_RESTARTS" == "$RESTARTS" ]]; then
  pass "certificate renewal: serial $BEFORE → $WANT served by the same pod $POD, Envoy not restarted"
else
  fail "certificate renewal: served serial $NOW (want $WANT, was $BEFORE), pod $POD → $AFTER_POD, restarts $RESTARTS → $AFTER_RESTARTS"
fi

echo
echo "kind e2e: $PASSED passed, $FAILED failed"
if [[ $FAILED -ne 0 ]]; then exit 1; fi
echo "kind e2e: PASS"
