#!/bin/sh
# search.sh - the SMS text search at scale (issue 16 item 13), by hand, not
# in CI. For each backend (SQLite, then a throw-away PostgreSQL server):
#   1. a schema-4 base of CARDS cards, one subscriber each, built in SQL with
#      varied names ("Sofia Carvalho Raposo": 40 first names x 50 x 50
#      surnames) and infos ("Rua Augusta 12, 2750-123 Cascais, tel +351
#      9xxxxxxxx": 60 streets, 40 towns, a phone number);
#   2. `castellan sms init`: migration 5 builds the search index (timed:
#      what upgrading an existing base costs), database size before/after;
#   3. the old scan (the query the store ran before schema 5) for one
#      subscriber's phone number, once;
#   4. bench_search query: sms_card_search (name or info, 50 cards a page)
#      for rare, medium and common texts, REPEAT times each;
#   5. `castellan web serve` (one HTTP loop) and bench_search api: GET
#      /api.php back to back on one connection for SECONDS, alone, then with
#      two clients searching back to back (a rare text; a common one), with
#      the search workers (default) and with --search-workers 0 (searches on
#      the HTTP loop, as before).
# Usage: bench/search.sh [CARDS [OUT]]  (defaults 1000000, stdout)
# Environment: BUILD (default build), BACKENDS ("sqlite postgresql"),
#   REPEAT (20), SECONDS_API (10), KEEP (keep the work directory).
set -eu
CARDS=${1:-1000000}
OUT=${2:-/dev/stdout}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
CLI=$ROOT/$BUILD/src/cli/castellan
BENCH=$ROOT/$BUILD/bench/bench_search
BACKENDS=${BACKENDS:-sqlite postgresql}
REPEAT=${REPEAT:-20}
SECONDS_API=${SECONDS_API:-10}
FIRST=2100000000
PGPORT=55498
W=$(mktemp -d /tmp/castellan-search-XXXXXX)
SERVER=""
PGBIN=""
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
	[ -n "$PGBIN" ] && runas "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT INT TERM
runas() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
el() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }
pg() { psql -q -X -h "$W/pg" -p $PGPORT -U castellan -d postgres -v ON_ERROR_STOP=1 "$@"; }
say() { echo "$*" >>"$OUT"; echo "$*" >&2; }

# Lookup tables and the rows; $1: the series of i (1..CARDS) as a FROM item.
gen_sql() {
	cat <<SQL
CREATE TABLE bf (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE bs (id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE bst (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE bt (id INTEGER PRIMARY KEY, v TEXT);
SQL
	i=0; for v in Ana Bruno Carla Diogo Eva Filipe Gabriela Hugo Ines Joao Katia Luis Marta Nuno Olga Pedro Quiteria Rui Sofia Tiago Ursula Vasco Wanda Xavier Yara Zeca Alice Bernardo Clara Duarte Elisa Fabio Gloria Henrique Irene Jorge Lara Miguel Nadia Oscar; do
		echo "INSERT INTO bf VALUES ($i, '$v');"; i=$((i + 1)); done
	i=0; for v in Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Jesus Sousa Fernandes Goncalves Gomes Lopes Marques Alves Almeida Ribeiro Pinto Carvalho Teixeira Moreira Correia Mendes Nunes Soares Vieira Monteiro Cardoso Rocha Raposo Neves Coelho Cruz Cunha Pires Ramos Reis Simoes Antunes Matos Fonseca Machado Araujo Barbosa Tavares Lourenco Castro Figueiredo Azevedo; do
		echo "INSERT INTO bs VALUES ($i, '$v');"; i=$((i + 1)); done
	i=0; for v in Augusta Aurea Prata Garrett Carmo Alecrim Flores Palma Liberdade Ouro Sol Mar Vento Lua Estrela Pombal Brasil Madrid Londres Paris Roma Berlim Viena Praga Oslo Lisboa Porto Braga Faro Leiria Tejo Douro Minho Mondego Sado Guadiana Vouga Lima Tamega Zezere Cavado Ave Paiva Coura Alva Dao Ceira Sorraia Almonda Nabao Alviela Maior Menor Nova Velha Direita Esquerda Alta Baixa Central; do
		echo "INSERT INTO bst VALUES ($i, '$v');"; i=$((i + 1)); done
	i=0; for v in Lisboa Porto Braga Coimbra Faro Aveiro Viseu Leiria Setubal Evora Beja Guarda Braganca Santarem Portalegre Castelo Cascais Sintra Oeiras Amadora Almada Seixal Barreiro Loures Odivelas Matosinhos Maia Gaia Gondomar Valongo Guimaraes Famalicao Barcelos Viana Chaves Lamego Tomar Abrantes Elvas Lagos; do
		echo "INSERT INTO bt VALUES ($i, '$v');"; i=$((i + 1)); done
	cat <<SQL
INSERT INTO subscribers (id, name, info)
  SELECT i, f.v || ' ' || s1.v || ' ' || s2.v,
         'Rua ' || st.v || ' ' || (i % 300 + 1) || ', ' || (1000 + (i * 7) % 9000) || '-' || lpad_num((i * 13) % 1000, 3)
         || ' ' || t.v || ', tel +351 9' || lpad_num((i * 2654435761) % 100000000, 8)
    FROM $1 JOIN bf f ON f.id = (i * 7919) % 40 JOIN bs s1 ON s1.id = (i * 104729) % 50
    JOIN bs s2 ON s2.id = (i * 1299709) % 50 JOIN bst st ON st.id = (i * 15485863) % 60 JOIN bt t ON t.id = (i * 32452843) % 40;
INSERT INTO cards (serial, chip_id, state, pair, subscriber_id, start_time, finish_time, created_ms, updated_ms)
  SELECT $FIRST + i, 'C' || i, 0, 0, i, 1700000000, 1800000000, 0, 0 FROM $1;
INSERT INTO subscriptions (card, package, start_time, finish_time)
  SELECT $FIRST + i, i % 32, 1700000000, 1800000000 FROM $1;
DROP TABLE bf; DROP TABLE bs; DROP TABLE bst; DROP TABLE bt;
SQL
}

# The old query (store_admin.c before schema 5): every card, its subscriber's info lower-cased, LIKE.
OLD_SCAN="SELECT c.serial FROM cards c LEFT JOIN subscribers u ON u.id = c.subscriber_id WHERE c.serial > 0 AND LOWER(COALESCE(u.info, '')) LIKE '%PAT%' ORDER BY c.serial LIMIT 50"

api_runs() { # BACKEND URI
	for mode in workers loop; do
		mkdir -p "$W/data-$1-$mode"
		sw=2; [ "$mode" = loop ] && sw=0
		"$CLI" web --data "$W/data-$1-$mode" serve --db "$2" --http 127.0.0.1:0 --ready-file "$W/ready" \
			--admin-password-file "$W/pw" --search-workers $sw >"$W/serve.log" 2>&1 &
		SERVER=$!
		i=0; while [ ! -s "$W/ready" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
		PORT=$(sed -n 's/^http=//p' "$W/ready"); rm -f "$W/ready"
		SERIAL=$((FIRST + CARDS / 2))
		if [ "$mode" = workers ]; then
			say "| $1 | none | - | $("$BENCH" api "$PORT" "$KEY" $SERIAL "$SECONDS_API" 0 /)"
		fi
		for q in "$RARE" "$COMMON"; do
			enc=$(echo "$q" | sed 's/ /%20/g; s/+/%2B/g')
			say "| $1 | 2 x q=$q | $mode | $("$BENCH" api "$PORT" "$KEY" $SERIAL "$SECONDS_API" 2 "/api/v1/cards?limit=50&q=$enc" || true)"
		done
		kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
	done
}

echo "bench-password-0123456789" >"$W/pw"
say "## $CARDS cards, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for be in $BACKENDS; do
	if [ "$be" = sqlite ]; then
		URI="sqlite:$W/sms.db"
	else
		PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
		mkdir -p "$W/pg"; [ "$(id -u)" = 0 ] && chown postgres "$W" "$W/pg"
		runas "$PGBIN/initdb" -D "$W/pg/data" -A trust -U castellan -E UTF8 --no-sync >/dev/null
		runas "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -t 60 \
			-o "-p $PGPORT -k $W/pg -c listen_addresses='' -c shared_buffers=512MB -c max_wal_size=8GB -c maintenance_work_mem=512MB" \
			start >/dev/null
		URI="postgres:host=$W/pg port=$PGPORT dbname=postgres user=castellan"
	fi
	KEY=$("$CLI" sms --db "$URI" init --admin bench 2>/dev/null | grep -Eo '[A-Za-z0-9_-]{32,}' | tail -1)
	t0=$(now)
	if [ "$be" = sqlite ]; then
		# back to schema 4: no search objects
		sqlite3 "$W/sms.db" "DROP TRIGGER subscribers_fts_ai; DROP TRIGGER subscribers_fts_ad; DROP TRIGGER subscribers_fts_au;
			DROP TABLE subscribers_fts; DROP INDEX subscribers_name_nocase; DROP INDEX cards_subscriber;
			DROP INDEX subscribers_name; DELETE FROM schema_version WHERE version = 5;"
		{ echo "BEGIN;"; gen_sql "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $CARDS) SELECT i FROM n)" |
			sed "s/lpad_num(\([^,]*\), \([0-9]\))/printf('%0\2d', \1)/g"; echo "COMMIT;"; } | sqlite3 "$W/sms.db"
		SIZE0=$(du -m "$W/sms.db" | cut -f1)
	else
		pg -c "DROP INDEX subscribers_name_trgm; DROP INDEX subscribers_info_trgm; DROP INDEX subscribers_name_fold;
			DROP INDEX cards_subscriber; DROP INDEX subscribers_name; DELETE FROM schema_version WHERE version = 5;"
		{ echo "BEGIN;"; gen_sql "generate_series(1::bigint, $CARDS) AS g(i)" |
			sed "s/lpad_num(\([^,]*\), \([0-9]\))/lpad((\1)::text, \2, '0')/g; s/CREATE TABLE \(b[a-z]*\) /CREATE TEMP TABLE \1 /g"
			echo "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), $CARDS);"; echo "COMMIT;"; } | pg >/dev/null
		pg -c "VACUUM ANALYZE" >/dev/null
		SIZE0=$(pg -At -c "SELECT pg_database_size('postgres') / 1048576")
	fi
	t1=$(now)
	"$CLI" sms --db "$URI" init >/dev/null 2>"$W/migrate.log"
	t2=$(now)
	if [ "$be" = sqlite ]; then SIZE1=$(du -m "$W/sms.db" | cut -f1); else
		pg -c "ANALYZE" >/dev/null; SIZE1=$(pg -At -c "SELECT pg_database_size('postgres') / 1048576"); fi
	say ""
	say "### $be"
	say ""
	say "base (schema 4) built in SQL in $(el $t0 $t1) s, $SIZE0 MB; migration 5 (the search index) $(el $t1 $t2) s, then $SIZE1 MB"
	# texts from the base itself: one subscriber's phone number and full name
	MID=$((CARDS / 3))
	if [ "$be" = sqlite ]; then
		PHONE=$(sqlite3 "$W/sms.db" "SELECT substr(info, instr(info, 'tel +351 ') + 9, 9) FROM subscribers WHERE id = $MID")
		NAME=$(sqlite3 "$W/sms.db" "SELECT name FROM subscribers WHERE id = $MID")
		pat=$(echo "$PHONE" | tr 'A-Z' 'a-z')
		t3=$(now); sqlite3 "$W/sms.db" "$(echo "$OLD_SCAN" | sed "s/PAT/$pat/")" >/dev/null; t4=$(now)
	else
		PHONE=$(pg -At -c "SELECT substr(info, strpos(info, 'tel +351 ') + 9, 9) FROM subscribers WHERE id = $MID")
		NAME=$(pg -At -c "SELECT name FROM subscribers WHERE id = $MID")
		pat=$PHONE
		t3=$(now); pg -At -c "$(echo "$OLD_SCAN" | sed "s/PAT/$pat/")" >/dev/null; t4=$(now)
	fi
	say "old scan (before schema 5) for info containing '$PHONE': $(el $t3 $t4) s"
	say ""
	say "| text | cards (page of 50) | index candidates | median ms | max ms (first run included) |"
	say "|---|---|---|---|---|"
	"$BENCH" query "$URI" "$REPEAT" "$PHONE" "$(echo "$PHONE" | cut -c4-9)" "$NAME" "Rua Augusta 12," "augusta" \
		"carvalho" "Li" 2>/dev/null | awk -F'\t' '{printf "| `%s` | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' | tee -a "$OUT" >&2
	RARE=$PHONE
	COMMON=augusta
	say ""
	say "| backend | concurrent searches | searches run | /api.php latency (one connection, back to back) |"
	say "|---|---|---|---|"
	api_runs "$be" "$URI"
	if [ "$be" = postgresql ]; then runas "$PGBIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null; PGBIN=""; fi
done
