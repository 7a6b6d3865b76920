# serfhand: build, deps, test, bench, demo, fuzz, install.
# Every library comes from pkg-config, except lua-cjson, which is linked from
# Debian's static archive so that no module loader is needed.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKG_CONFIG ?= pkg-config

PKGS    := lua5.4 libsodium sqlite3
CJSON_A := $(shell $(PKG_CONFIG) --variable=libdir lua5.4 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/liblua5.4-cjson.a

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

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) libcurl 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := $(WARN) $(CFLAGS) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) -MMD -MP
LIBS       := $(CJSON_A) $(PKG_LIBS) -ldl -lm

SRC     ?= $(wildcard src/*.c)
OBJ     := $(SRC:src/%.c=$(BUILD)/%.o)
LIBOBJ  := $(filter-out $(BUILD)/main.o,$(OBJ))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/%,$(wildcard tests/unit/test_*.c))
BIN     := $(BUILD)/serfhand

.PHONY: all deps test unit bench demo fuzz install lint format format-check clean

all: $(BIN)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BIN): $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LIBS)
	@[ "$(BUILD)" != build ] || ln -sf build/serfhand serfhand

$(BUILD)/test_%: tests/unit/test_%.c $(LIBOBJ) tests/unit/t.h
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBOBJ) $(LIBS)

$(BUILD):
	mkdir -p $@

-include $(OBJ:.o=.d)

# Install the Debian packages the build and the tests need (only the missing ones).
deps:
	@scripts/deps.sh

unit: $(UNIT)

test: deps
	@$(MAKE) --no-print-directory all unit
	@BUILD=$(BUILD) tests/run

bench: deps all
	@BUILD=$(BUILD) bench/run

demo: deps all
	@BUILD=$(BUILD) examples/demo.sh

# libFuzzer harnesses for every parser of outside bytes (clang), bounded time.
fuzz: deps
	@BUILD=$(BUILD) FUZZ_SECONDS=$${FUZZ_SECONDS:-10} tests/fuzz/run

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/serfhand/types \
	  $(DESTDIR)$(PREFIX)/share/doc/serfhand
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/serfhand
	install -m 0644 serfhand.conf.sample $(DESTDIR)$(PREFIX)/share/serfhand/serfhand.conf.sample
	install -m 0644 types/*.lua $(DESTDIR)$(PREFIX)/share/serfhand/types/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/serfhand/

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem -Iinclude src
	luacheck -q lua handlers tests/lua

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/unit/*.h

format-check:
	clang-format --dry-run -Werror src/*.c include/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build build-san serfhand
