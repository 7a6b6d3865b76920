# serfhand: build, deps, test, bench, demo, fuzz, install.
# Every library comes from pkg-config, except lua-cjson, which is linked from
# Debian's static archive so that no module loader is needed; Lua, libsodium
# and SQLite are linked from their static archives too (STATIC_LIBS, below).
# `make demo`, `make test`, `make bench` and `make fuzz` first install what is
# missing (make deps), and work in that same invocation on a fresh machine:
# pkg-config is asked only by the commands that compile or link, never when
# this file is read, and nothing compiles before deps has finished (also -j).

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKG_CONFIG ?= pkg-config

PKGS    := lua5.4 libsodium sqlite3
# libcurl: headers only (it is loaded with dlopen at run time)
HDR_PKGS := libcurl
# Recursive (=) on purpose: each expands in a recipe, after deps has run.
CJSON_A  = $(shell $(PKG_CONFIG) --variable=libdir lua5.4 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/liblua5.4-cjson.a

WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wwrite-strings -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
ifeq ($(CI),true)
CFLAGS  += -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
BUILD   := build-san
else
BUILD   := build
endif

# STATIC_LIBS=1 (the default) links liblua5.4, libsodium and libsqlite3 from
# Debian's static archives: a trivial handler's whole process then loads three
# shared objects fewer and, with DT_RELR, does a twentieth of the relocations
# (bench/README.md: 1.24x -> 1.08x `lua5.4 -e ''`). Each library whose .a is missing is linked
# shared, as with STATIC_LIBS=0. The price: a Debian security update of one
# of the three reaches serfhand only when it is rebuilt (docs/operators.md).
# -z pack-relative-relocs keeps the binary PIE with a compact table of the
# relative relocations (glibc 2.36, binutils 2.38: Debian 12).
STATIC_LIBS ?= 1
PKG_CFLAGS  = $(shell $(PKG_CONFIG) --cflags $(PKGS) $(HDR_PKGS) 2>/dev/null)
ifeq ($(STATIC_LIBS),1)
# pkg-config name:archive name; the archive is looked for in pkg-config's libdir
STATIC_ARS  := lua5.4:lua5.4 libsodium:sodium sqlite3:sqlite3
static_or_shared = $(or $(wildcard $(shell $(PKG_CONFIG) --variable=libdir $(1) 2>/dev/null)/lib$(2).a),$(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null))
PKG_LIBS    = $(foreach p,$(STATIC_ARS),$(call static_or_shared,$(firstword $(subst :, ,$(p))),$(lastword $(subst :, ,$(p))))) -pthread
LINK_FLAGS  := -Wl,-z,pack-relative-relocs
else
PKG_LIBS    = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
LINK_FLAGS  :=
endif
ALL_CFLAGS  = $(WARN) $(CFLAGS) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) -MMD -MP
LIBS        = $(CJSON_A) $(PKG_LIBS) -ldl -lm

SRC     ?= $(wildcard src/*.c)
OBJ     := $(SRC:src/%.c=$(BUILD)/%.o)
LIBOBJ  := $(filter-out $(BUILD)/main.o,$(OBJ))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/%,$(wildcard tests/unit/test_*.c))
BIN     := $(BUILD)/serfhand

.PHONY: all deps have-libs test unit bench demo fuzz install uninstall lint format format-check clean

# The test hooks (SERFHAND_TEST_CRASH_AT, SERFHAND_KDF) exist only in a second
# binary built with -DSERFHAND_TEST_HOOKS, used by the tests that need them;
# the binary `make install` installs ignores them (DESIGN 4b). HOOKED: the
# sources that have hooks, compiled twice.
HOOKS   := $(BUILD)/serfhand-test-hooks
HOOKED  := install cmd_keygen

all: $(BIN) $(HOOKS)

# Every compile waits for this check, so a missing package is one clear
# message instead of "lua.h: No such file or directory".
have-libs:
	@missing=""; \
	if ! command -v $(PKG_CONFIG) > /dev/null 2>&1; then missing="$(PKG_CONFIG)"; else \
	  for p in $(PKGS) $(HDR_PKGS); do $(PKG_CONFIG) --exists $$p || missing="$$missing $$p"; done; \
	  [ -f "$(CJSON_A)" ] || missing="$$missing $(CJSON_A)"; \
	fi; \
	[ -z "$$missing" ] || { \
	  echo "serfhand: cannot build, missing: $${missing# }"; \
	  echo "serfhand: run 'make deps' as root to install the Debian packages" \
	       "(make demo and make test run it first)"; \
	  exit 2; } >&2

# A run that installs packages compiles nothing before they are in.
ifneq ($(filter deps demo test bench fuzz,$(MAKECMDGOALS)),)
have-libs: deps
endif

$(BUILD)/%.o: src/%.c | $(BUILD) have-libs
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BIN): $(OBJ)
	$(CC) $(LDFLAGS) $(LINK_FLAGS) -o $@ $(OBJ) $(LIBS)
	@[ "$(BUILD)" != build ] || ln -sf build/serfhand serfhand

$(BUILD)/%-hooks.o: src/%.c | $(BUILD) have-libs
	$(CC) $(ALL_CFLAGS) -DSERFHAND_TEST_HOOKS -c -o $@ $<

$(HOOKS): $(filter-out $(HOOKED:%=$(BUILD)/%.o),$(OBJ)) $(HOOKED:%=$(BUILD)/%-hooks.o)
	$(CC) $(LDFLAGS) $(LINK_FLAGS) -o $@ $^ $(LIBS)

$(BUILD)/test_%: tests/unit/test_%.c $(LIBOBJ) tests/unit/t.h | have-libs
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(LINK_FLAGS) -o $@ $< $(LIBOBJ) $(LIBS)

$(BUILD):
	mkdir -p $@

-include $(OBJ:.o=.d) $(HOOKED:%=$(BUILD)/%-hooks.d)

# Install the Debian packages the build and the tests need (only the missing ones).
deps:
	@scripts/deps.sh

unit: $(UNIT)

test: deps all unit
	@BUILD=$(BUILD) tests/run

bench: deps all
	@BUILD=$(BUILD) STATIC_LIBS=$(STATIC_LIBS) bench/run

demo: deps all
	@BUILD=$(BUILD) examples/demo.sh

# libFuzzer harnesses for every parser of outside bytes (clang), bounded time.
fuzz: deps
	@BUILD=$(BUILD) FUZZ_SECONDS=$${FUZZ_SECONDS:-5} tests/fuzz/run

# Where `make install` puts things (each can be set on the command line).
# DATADIR: what authors and operators use (types, luacheckrc, the sample
# config, the systemd drop-in); DOCDIR mirrors the repository's README.md,
# docs/, examples/hello and the sample, so the docs' relative links work.
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/serfhand
DOCDIR  ?= $(PREFIX)/share/doc/serfhand
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SUBST    = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/types \
	  $(DESTDIR)$(DATADIR)/systemd/serf.service.d $(DESTDIR)$(SYSTEMDUNITDIR) \
	  $(DESTDIR)$(DOCDIR)/docs
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/serfhand
	install -m 0644 serfhand.conf.sample share/luacheckrc $(DESTDIR)$(DATADIR)/
	install -m 0644 types/*.lua $(DESTDIR)$(DATADIR)/types/
	$(SUBST) share/luarc.json.in > $(DESTDIR)$(DATADIR)/luarc.json
	$(SUBST) systemd/serf.service.d/serfhand.conf.in \
	  > $(DESTDIR)$(DATADIR)/systemd/serf.service.d/serfhand.conf
	$(SUBST) systemd/serfhand-tick.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/serfhand-tick.service
	install -m 0644 systemd/serfhand-tick.timer $(DESTDIR)$(SYSTEMDUNITDIR)/
	chmod 0644 $(DESTDIR)$(DATADIR)/luarc.json $(DESTDIR)$(SYSTEMDUNITDIR)/serfhand-tick.service \
	  $(DESTDIR)$(DATADIR)/systemd/serf.service.d/serfhand.conf
	install -m 0644 README.md serfhand.conf.sample $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/
	find examples/hello -type d -exec install -d -m 0755 '$(DESTDIR)$(DOCDIR)/{}' ';'
	find examples/hello -type f -exec install -m 0644 '{}' '$(DESTDIR)$(DOCDIR)/{}' ';'

# Removes exactly the files install put there (named from this tree, never
# a whole directory: a mistyped DATADIR must not take its neighbours), then
# the directories install made, where they are empty.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/serfhand $(DESTDIR)$(SYSTEMDUNITDIR)/serfhand-tick.service \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/serfhand-tick.timer \
	  $(DESTDIR)$(DATADIR)/serfhand.conf.sample $(DESTDIR)$(DATADIR)/luacheckrc \
	  $(DESTDIR)$(DATADIR)/luarc.json $(DESTDIR)$(DATADIR)/systemd/serf.service.d/serfhand.conf \
	  $(addprefix $(DESTDIR)$(DATADIR)/,$(wildcard types/*.lua)) \
	  $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/serfhand.conf.sample \
	  $(addprefix $(DESTDIR)$(DOCDIR)/,$(wildcard docs/*.md))
	find examples/hello -type f -exec rm -f '$(DESTDIR)$(DOCDIR)/{}' ';'
	find examples/hello -depth -type d -exec rmdir '$(DESTDIR)$(DOCDIR)/{}' ';' 2>/dev/null || true
	-rmdir $(DESTDIR)$(DATADIR)/types $(DESTDIR)$(DATADIR)/systemd/serf.service.d \
	  $(DESTDIR)$(DATADIR)/systemd $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR) 2>/dev/null

# clang-tidy reads .clang-tidy (bugprone, cert, a few readability checks);
# its "N warnings generated" lines (system headers) are shown only on failure.
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem -Iinclude src
	@out=$$(clang-tidy --quiet src/*.c -- -std=c11 -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) 2>&1) || \
	  { printf '%s\n' "$$out" | grep -v 'warnings generated'; exit 1; }
	luacheck -q lua handlers tests/lua

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/unit/*.h

format-check:
	clang-format --dry-run -Werror src/*.c include/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-san serfhand
