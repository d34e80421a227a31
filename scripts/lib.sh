# Shared helpers for scripts/demo and scripts/test: install what nachweis
# needs on a Debian machine and make sure the services the tests use run.
# Sourced, not executed.

# Debian packages: Tesseract with German data (OCR), libclang for the
# tesseract crate's bindgen, poppler-utils (pdftotext, the benchmark
# baseline and PDF checks), fonts for rendering.
NACHWEIS_APT_PACKAGES=(pkg-config clang libclang-dev libtesseract-dev libleptonica-dev tesseract-ocr
  tesseract-ocr-deu tesseract-ocr-osd poppler-utils fonts-dejavu-core)
NACHWEIS_SERVICE_PACKAGES=(postgresql rabbitmq-server)
# The browser tests drive Debian's Chromium through chromedriver.
NACHWEIS_BROWSER_PACKAGES=(chromium chromium-driver)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "nachweis needs Rust (cargo) 1.95 or newer: https://rustup.rs" >&2
    exit 1
  fi
}

ensure_postgres() {
  install_packages "${NACHWEIS_SERVICE_PACKAGES[0]}"
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "==> starting PostgreSQL" >&2
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
  # The tests connect as postgres over TCP; Debian's default needs a password there.
  if ! psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    export PGPASSWORD=postgres
    export NACHWEIS_TEST_POSTGRES_URL="${NACHWEIS_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
  fi
  export NACHWEIS_TEST_POSTGRES_URL="${NACHWEIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
}

ensure_rabbitmq() {
  install_packages "${NACHWEIS_SERVICE_PACKAGES[1]}"
  if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
    echo "==> starting RabbitMQ" >&2
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
    as_root rabbitmqctl -q wait --timeout 60 /var/lib/rabbitmq/mnesia/rabbit@"$(hostname -s)".pid >/dev/null 2>&1 || sleep 10
  fi
  export NACHWEIS_TEST_AMQP_URL="${NACHWEIS_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
}
