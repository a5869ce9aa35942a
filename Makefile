# pgcarrier - build, unit tests, integration tests.
#
#   make                 build ./pgcarrier (release, -O2)
#   make SAN=1           build build/san/pgcarrier with ASan + UBSan
#   make SAN=thread      build build/tsan/pgcarrier with ThreadSanitizer
#   make unit            build and run the cmocka unit tests
#   make integration PYTEST_ARGS="-q tests/integration/test_auth.py"
#                        the integration suite, or only the files named;
#                        IO_BACKEND=epoll|io_uring|auto: every daemon's loop
#   make check           everything: unit tests and the integration suite
#                        against a real PostgreSQL 15, plain (once with each
#                        event loop, epoll and io_uring) and under ASan/UBSan,
#                        then the multi-threaded tests (TSAN_TESTS) under
#                        TSan; every part runs, each gets a summary line at
#                        the end, and check fails if any part failed
#   make check-plain | check-san | check-tsan    one of those parts
#   make extension [PG_CONFIG=...]   the PostgreSQL extension (src/extension, PGXS)
#   make install-extension [PG_CONFIG=...] [DESTDIR=...]
#                        its library, control and SQL files, and the daemon
#                        it runs (as `pg_config --bindir`/pgcarrier);
#                        PG_CONFIG defaults to PostgreSQL 15's (docs/builtin.md)
#   make install [PREFIX=/usr/local] [DESTDIR=...]
#                        the daemon, its man pages, a sample config and the
#                        systemd unit (see "Install" below); make uninstall
#
# Layout: the engine (src/engine) is a static archive, libpgcarrier.a, that
# the daemon (src/daemon) and the unit tests link. The PostgreSQL extension
# (src/extension) links none of it: it runs the daemon as a child process,
# because the engine links libpg_query, whose symbols clash with the
# server's.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
SAN     ?= 0

WARN     = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -pthread -g $(WARN) -Isrc/engine $(PQ_CFLAGS)
LDLIBS   = -l:libpg_query.a -lpq -lssl -lcrypto -luring -lpthread

ifeq ($(SAN),1)
BUILD    = build/san
CFLAGS   = $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS  = -fsanitize=address,undefined
else ifeq ($(SAN),thread)
# libpg_query.a, libpq and OpenSSL are not instrumented: TSan sees their
# locks through its pthread interceptors, which is what matters here.
BUILD    = build/tsan
CFLAGS   = $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS  = -fsanitize=thread
# Reports go to the daemon's stderr, where the harness looks for them.
TSAN_ENV = TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) second_deadlock_stack=1 $$TSAN_OPTIONS"
# gcc 12's TSan cannot place its shadow memory when the kernel randomizes
# mmap with more bits than it expects (vm.mmap_rnd_bits > 28): run the tests
# without address randomization where the system lets us (not in every
# container), so that the whole process tree inherits it.
TSAN_ENV += $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
else
BUILD    = build/release
CFLAGS   = $(CFLAGS_COMMON) -O2
LDFLAGS  =
endif

ENGINE_SRC = $(sort $(wildcard src/engine/*.c))
ENGINE_OBJ = $(patsubst src/%.c,$(BUILD)/%.o,$(ENGINE_SRC))
ENGINE_LIB = $(BUILD)/libpgcarrier.a
DAEMON_OBJ = $(patsubst src/%.c,$(BUILD)/%.o,$(sort $(wildcard src/daemon/*.c)))
UNIT_SRC   = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all unit check check-plain check-san check-tsan integration clean bench demo install uninstall \
	extension install-extension uninstall-extension integration-install

all: pgcarrier

ifneq ($(SAN),0)
pgcarrier: $(BUILD)/pgcarrier
else
pgcarrier: $(BUILD)/pgcarrier
	cp $< $@.tmp && mv -f $@.tmp $@
endif

$(ENGINE_LIB): $(ENGINE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/pgcarrier: $(DAEMON_OBJ) $(ENGINE_LIB)
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJ) $(ENGINE_LIB) $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/engine/*.h src/daemon/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(ENGINE_LIB) -lcmocka $(LDLIBS)

# Every unit test program runs, even after one has failed.
unit: $(UNIT_BIN)
	@failed=; for t in $(UNIT_BIN); do echo "== $$t"; $$t || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "unit tests FAILED:$$failed"; exit 1; fi

# PYTEST_ARGS that name test files or directories (tests/...) run just those.
# The built-in mode's tests (test_builtin.py) need the extension installed
# into the PostgreSQL that the harness runs: installed first (as root; a
# user who cannot install still runs the rest, and test_builtin.py says why
# it fails).
# A sanitizer build is also the daemon the built-in tests' supervisors run
# (the installed one is the release build).
# IO_BACKEND=epoll|io_uring|auto runs every daemon of the suite with that
# event loop (PGCARRIER_IO_BACKEND overrides io_backend); unset: the
# configured one (io_backend's default unless a test sets it).
integration: $(BUILD)/pgcarrier integration-install
	$(if $(IO_BACKEND),PGCARRIER_IO_BACKEND=$(IO_BACKEND)) PGCARRIER_BIN=$(abspath $(BUILD)/pgcarrier) PGCARRIER_SAN=$(SAN) \
	  $(if $(filter 0,$(SAN)),,PGCARRIER_BUILTIN_DAEMON=$(abspath $(BUILD)/pgcarrier)) $(TSAN_ENV) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(if $(findstring tests/,$(PYTEST_ARGS)),,tests/integration) $(PYTEST_ARGS)

# The tests that make check runs under ThreadSanitizer: those where worker
# threads share pools, servers and caches (concurrency, limits, the guard at
# scale), where the main thread reloads under load (lifecycle), and where
# other threads do the work (auth_query's libpq thread, TLS handshakes), and
# PgBouncer's keys that act across threads (server checks, reloads under
# server_fast_close, syslog from every worker), and the built-in pooler's
# daemon (the same build, run by the extension's supervisor) under the
# backends' reports and the SQL interface.
# About 4 minutes on 2 cores; the rest of the suite adds ~2 more and little
# threading.
TSAN_TESTS = $(addprefix tests/integration/,test_concurrency.py test_limits.py \
	test_lifecycle.py test_auth_query.py test_guard_scale.py test_tls.py \
	test_pgbouncer_compat.py test_console_commands.py test_pause_restart.py test_metrics.py \
	test_builtin_guard.py test_builtin_sql.py test_pipeline.py)

check-plain:
	$(MAKE) -k SAN=0 unit integration

check-san:
	$(MAKE) -k SAN=1 unit integration

check-tsan:
	$(MAKE) SAN=thread integration PYTEST_ARGS="$(TSAN_TESTS)"

# Each part runs whatever happened to the ones before (a failure in the
# plain build must not hide the sanitizer runs); build/check-summary gets a
# line per part, printed at the end.
CHECK_SUMMARY = build/check-summary
check:
	@mkdir -p build; : > $(CHECK_SUMMARY); \
	part() { \
	  what=$$1; shift; t0=$$(date +%s); \
	  if $(MAKE) --no-print-directory "$$@"; then r=passed; else r=FAILED; fi; \
	  echo "make check: $$what $$r ($$(( $$(date +%s) - t0 )) s)" >> $(CHECK_SUMMARY); \
	}; \
	part "plain build, unit tests:                " SAN=0 unit; \
	part "plain build, integration, epoll:        " SAN=0 integration IO_BACKEND=epoll; \
	part "plain build, integration, io_uring:     " SAN=0 integration IO_BACKEND=io_uring; \
	part "ASan+UBSan build, unit tests:           " SAN=1 unit; \
	part "ASan+UBSan build, integration, io_uring:" SAN=1 integration IO_BACKEND=io_uring; \
	part "TSan build, multi-threaded tests:       " SAN=thread integration PYTEST_ARGS="$(TSAN_TESTS)"; \
	echo; echo "== make check summary"; cat $(CHECK_SUMMARY); \
	if grep -q FAILED $(CHECK_SUMMARY); then echo "make check: FAILED"; exit 1; fi; \
	echo "make check: all parts passed"

# ---- Install ----
# PREFIX=/usr puts the configuration in /etc, as a distribution does; any
# other prefix keeps it under PREFIX. The configuration and its auth file
# are installed only where there are none yet (a DBA's file is never
# replaced); the examples directory always gets the samples.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/pgcarrier
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install

install: build/release/pgcarrier
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/pgcarrier
	$(INSTALL) -m 0755 build/release/pgcarrier $(DESTDIR)$(BINDIR)/pgcarrier
	$(INSTALL) -m 0644 man/pgcarrier.1 $(DESTDIR)$(MANDIR)/man1/pgcarrier.1
	$(INSTALL) -m 0644 man/pgcarrier.ini.5 $(DESTDIR)$(MANDIR)/man5/pgcarrier.ini.5
	$(INSTALL) -m 0644 etc/pgcarrier.ini etc/userlist.txt $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 docs/behaviour.md docs/migrating-from-pgbouncer.md $(DESTDIR)$(DOCDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/pgcarrier.service.in \
	  > $(DESTDIR)$(UNITDIR)/pgcarrier.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/pgcarrier.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/pgcarrier.service.tmp $(DESTDIR)$(UNITDIR)/pgcarrier.service
	test -e $(DESTDIR)$(SYSCONFDIR)/pgcarrier/pgcarrier.ini || \
	  $(INSTALL) -m 0640 etc/pgcarrier.ini $(DESTDIR)$(SYSCONFDIR)/pgcarrier/pgcarrier.ini
	test -e $(DESTDIR)$(SYSCONFDIR)/pgcarrier/userlist.txt || \
	  $(INSTALL) -m 0600 etc/userlist.txt $(DESTDIR)$(SYSCONFDIR)/pgcarrier/userlist.txt

# The configuration stays: it is the DBA's.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pgcarrier $(DESTDIR)$(MANDIR)/man1/pgcarrier.1 \
	  $(DESTDIR)$(MANDIR)/man5/pgcarrier.ini.5 $(DESTDIR)$(UNITDIR)/pgcarrier.service
	rm -rf $(DESTDIR)$(DOCDIR)

# ---- The PostgreSQL extension (built-in mode, docs/builtin.md) ----
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

extension:
	$(MAKE) -C src/extension PG_CONFIG=$(PG_CONFIG)

# The daemon installed is always the release build (the supervisor runs it).
install-extension: extension
	$(MAKE) SAN=0 build/release/pgcarrier
	$(MAKE) -C src/extension PG_CONFIG=$(PG_CONFIG) install
	$(INSTALL) -d $(DESTDIR)$$($(PG_CONFIG) --bindir)
	$(INSTALL) -m 0755 build/release/pgcarrier $(DESTDIR)$$($(PG_CONFIG) --bindir)/pgcarrier.tmp
	mv -f $(DESTDIR)$$($(PG_CONFIG) --bindir)/pgcarrier.tmp $(DESTDIR)$$($(PG_CONFIG) --bindir)/pgcarrier

integration-install:
	@$(MAKE) --no-print-directory install-extension || \
	  echo "make: could not install the extension; tests/integration/test_builtin.py will fail (run make install-extension as root)"

uninstall-extension:
	$(MAKE) -C src/extension PG_CONFIG=$(PG_CONFIG) uninstall
	rm -f $(DESTDIR)$$($(PG_CONFIG) --bindir)/pgcarrier

bench: pgcarrier
	bash bench/run.sh

demo: pgcarrier
	bash scripts/demo.sh

clean:
	rm -rf build pgcarrier
	$(MAKE) -C src/extension PG_CONFIG=$(PG_CONFIG) clean
