# pgcarrier - build, unit tests, integration tests.
#
#   make                 build ./pgcarrier (release, -O2)
#   make SAN=1           build build/san/pgcarrier with ASan + UBSan
#   make unit            build and run the cmocka unit tests
#   make integration PYTEST_ARGS="-q tests/integration/test_auth.py"
#                        the integration suite, or only the files named
#   make check           everything: unit tests, then the integration suite
#                        against a real PostgreSQL 15, plain and under ASan/UBSan
#
# The engine (src/engine) is kept free of daemon-only code so that the
# PostgreSQL extension (PGXS, later) can build the same files.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
SAN     ?= 0

WARN     = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -pthread -g $(WARN) -Isrc/engine $(PQ_CFLAGS)
LDLIBS   = -l:libpg_query.a -lpq -lssl -lcrypto -lpthread

ifeq ($(SAN),1)
BUILD    = build/san
CFLAGS   = $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS  = -fsanitize=address,undefined
else
BUILD    = build/release
CFLAGS   = $(CFLAGS_COMMON) -O2
LDFLAGS  =
endif

ENGINE_SRC = $(sort $(wildcard src/engine/*.c))
ENGINE_OBJ = $(patsubst src/%.c,$(BUILD)/%.o,$(ENGINE_SRC))
DAEMON_OBJ = $(BUILD)/daemon/main.o
UNIT_SRC   = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all unit check check-plain check-san integration clean bench demo

all: pgcarrier

ifeq ($(SAN),1)
pgcarrier: $(BUILD)/pgcarrier
else
pgcarrier: $(BUILD)/pgcarrier
	cp $< $@.tmp && mv -f $@.tmp $@
endif

$(BUILD)/pgcarrier: $(ENGINE_OBJ) $(DAEMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/engine/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(ENGINE_OBJ) -lcmocka $(LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# PYTEST_ARGS that name test files or directories (tests/...) run just those.
integration: $(BUILD)/pgcarrier
	PGCARRIER_BIN=$(abspath $(BUILD)/pgcarrier) PGCARRIER_SAN=$(SAN) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(if $(findstring tests/,$(PYTEST_ARGS)),,tests/integration) $(PYTEST_ARGS)

check-plain:
	$(MAKE) SAN=0 unit integration

check-san:
	$(MAKE) SAN=1 unit integration

check: check-plain check-san

bench: pgcarrier
	bash bench/run.sh

demo: pgcarrier
	bash scripts/demo.sh

clean:
	rm -rf build pgcarrier
