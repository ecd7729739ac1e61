# Chronik build.
#
#   make            build/chronik (-O2 -g)
#   make run        build and start one node with the defaults (127.0.0.1:9092), in the foreground
#   make start      the same in the background (log in chronik.log); returns once the node is ready
#   make stop       stop the node `make start` started
#   make test       sanitizer build + every test tier (unit, codec freshness, sim, integration with
#                   the Java, franz-go, Kafka-tools and newest-Python-client tiers)
#   make test-long  the long tiers: 100k simulation seeds, 60 s fuzzing per target
#   make regen      regenerate src/proto/gen from ../shared/kafka-protocol
#   make fuzz       build the libFuzzer targets
#   make sim SEEDS=N FIRST=S
#   make bench      build the benchmarks
#   make bench-replication  3 chronik nodes against 3 Kafka brokers, RF 3 (bench/replication.py)
#   make bench-transactions transactional against idempotent producer, one node (bench/transactions.py)

CC      ?= cc
PYTHON  ?= /usr/bin/python3
SHARED  ?= ../shared
SCHEMAS ?= $(SHARED)/kafka-protocol

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
CSTD    := -std=c17 -D_GNU_SOURCE
INC     := -Isrc
CFLAGS_COMMON := $(CSTD) $(WARN) $(INC) -pthread -fno-strict-aliasing
CFLAGS_REL  := $(CFLAGS_COMMON) -O2 -g
CFLAGS_ASAN := $(CFLAGS_COMMON) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS_TSAN := $(CFLAGS_COMMON) -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDLIBS  := -pthread -lm -lz -lzstd -llz4 -lsnappy -lssl -lcrypto

LIB_SRC  := $(shell find src -name '*.c' ! -path src/main.c | sort)
HDRS     := $(shell find src -name '*.h')
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
SIM_SRC  := $(sort $(wildcard tests/sim/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))

REL_OBJ  := $(LIB_SRC:%.c=build/rel/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=build/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)
# Unit tests of the modules where threads meet also run under TSan; the
# modules they link are built a third time for it.
TSAN_UNIT := test_replica test_kclient
TSAN_LIB_SRC := $(filter src/base/% src/acl/% src/sasl/% src/net/% src/kclient/% src/proto/% src/storage/% src/txn/% src/meta/% src/raft/% src/replica/%,$(LIB_SRC))
TSAN_OBJ := $(TSAN_LIB_SRC:%.c=build/tsan/%.o)
TSAN_BIN := $(TSAN_UNIT:%=build/tsan/tests/%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=build/bench/%)

.PHONY: all run start stop deps-run test test-long unit sim sim-build regen gen-check docs fuzz fuzz-run integration deps deps-test bench bench-replication bench-transactions clean format

all: build/chronik

build/tsan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC(tsan) $<"
	@$(CC) $(CFLAGS_TSAN) -MMD -MP -c $< -o $@

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS_REL) -MMD -MP -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC(asan) $<"
	@$(CC) $(CFLAGS_ASAN) -MMD -MP -c $< -o $@

# The console's page, style sheet and script are built into this object (.incbin).
build/rel/src/admin/console.o build/asan/src/admin/console.o: $(wildcard src/admin/console/*)

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(TSAN_OBJ:.o=.d) build/rel/src/main.d build/asan/src/main.d

build/libchronik.a: $(REL_OBJ)
	@rm -f $@; ar rcs $@ $^

build/asan/libchronik.a: $(ASAN_OBJ)
	@rm -f $@; ar rcs $@ $^

build/chronik: build/rel/src/main.o build/libchronik.a
	$(CC) $(CFLAGS_REL) -o $@ $^ $(LDLIBS)

build/asan/chronik: build/asan/src/main.o build/asan/libchronik.a
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(LDLIBS)

build/tsan/libchronik.a: $(TSAN_OBJ)
	@rm -f $@; ar rcs $@ $^

build/tsan/tests/%: tests/unit/%.c tests/unit/test.h build/tsan/libchronik.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_TSAN) -Itests/unit -o $@ $< build/tsan/libchronik.a $(LDLIBS)

build/asan/tests/%: tests/unit/%.c tests/unit/test.h build/asan/libchronik.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -Itests/unit -o $@ $< build/asan/libchronik.a $(LDLIBS)

# The simulator runs thousands of seeds: optimised, with UBSan and assertions.
build/sim/chronik-sim: $(SIM_SRC) build/libchronik.a $(wildcard tests/sim/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -fsanitize=undefined -fno-sanitize-recover=undefined -Itests/sim -o $@ $(SIM_SRC) build/libchronik.a $(LDLIBS)

# Parsers live in base, proto, storage, raft (its wire), the metadata log (ACLs included) and its
# snapshots, the high watermark checkpoint, the admin endpoint's HTTP requests, the command line's
# times and the configuration (with the net module it checks addresses with): fuzzers link only those.
FUZZ_LIB_SRC := $(filter src/base/% src/acl/% src/sasl/% src/meta/scram.c src/proto/% src/storage/% src/raft/% src/meta/image.c src/meta/brokers.c src/meta/endpoints.c src/meta/metalog.c src/meta/snapshot.c src/meta/acls.c src/meta/quotas.c src/meta/election.c src/replica/hwcheck_format.c src/admin/http_parse.c src/admin/cli_time.c src/broker/config.c src/net/%,$(LIB_SRC))
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	@echo "CC(fuzz) $@"
	@clang $(CSTD) $(INC) -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-unused-command-line-argument -O1 -g -fsanitize=fuzzer,address,undefined -pthread -o $@ $< $(FUZZ_LIB_SRC) $(LDLIBS)

build/bench/%: bench/%.c bench/bench_clock.h bench/bench_args.h build/libchronik.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -o $@ $< build/libchronik.a $(LDLIBS) -lrdkafka

run: deps-run build/chronik
	./build/chronik server

START_TIMEOUT_S ?= 60
start: deps-run build/chronik
	@if [ -f chronik.pid ] && kill -0 $$(cat chronik.pid) 2>/dev/null; then \
	  echo "start: a node started here already runs (pid $$(cat chronik.pid)); make stop first"; exit 1; fi
	@./build/chronik server >>chronik.log 2>&1 & echo $$! >chronik.pid
	@./build/chronik wait-ready --timeout $(START_TIMEOUT_S) --pid $$(cat chronik.pid) \
	  || { tail -n 20 chronik.log; rm -f chronik.pid; exit 1; }

stop:
	@if [ -f chronik.pid ]; then kill $$(cat chronik.pid) 2>/dev/null; \
	  for i in $$(seq 300); do kill -0 $$(cat chronik.pid) 2>/dev/null || break; sleep 0.1; done; \
	  rm -f chronik.pid; echo "stopped"; \
	else echo "stop: no node started by make start"; fi

deps:
	@tools/deps.sh build

deps-run:
	@tools/deps.sh run

deps-test:
	@tools/deps.sh test

unit: $(UNIT_BIN) $(TSAN_BIN)
	@TSAN_OPTIONS=halt_on_error=1 tools/run-unit.sh $(UNIT_BIN) $(TSAN_BIN)

SEEDS ?= 2000
FIRST ?= 1
sim-build: $(if $(SIM_SRC),build/sim/chronik-sim)
sim: sim-build
	$(if $(SIM_SRC),./build/sim/chronik-sim --seeds $(SEEDS) --first $(FIRST),@echo "sim: no simulator sources")

# docs/CONFIG.md is the configuration table as Markdown (tests/integration/test_docs.py checks it).
docs: build/chronik
	./build/chronik server --config-doc > docs/CONFIG.md

regen:
	$(PYTHON) tools/protogen.py --schemas $(SCHEMAS) --out src/proto/gen

# Fails when the committed generated code differs from what the schemas give.
gen-check:
	@if [ -d $(SCHEMAS)/messages ]; then \
	  rm -rf build/gencheck && mkdir -p build/gencheck && \
	  $(PYTHON) tools/protogen.py --schemas $(SCHEMAS) --out build/gencheck && \
	  diff -r src/proto/gen build/gencheck >/dev/null && echo "gen-check: src/proto/gen is up to date" \
	  || { echo "gen-check: src/proto/gen is stale: run 'make regen'"; exit 1; }; \
	else echo "gen-check: $(SCHEMAS) not present, skipped"; fi

integration: build/chronik build/asan/chronik
	@tools/run-integration.sh
	@tools/run-integration.sh --new-python-clients

test: deps-test gen-check unit sim integration
	@echo "make test: all tiers passed"

fuzz: $(FUZZ_BIN)

FUZZ_SECONDS ?= 60
fuzz-run: fuzz
	@tools/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

test-long: deps-test
	$(MAKE) test
	$(MAKE) sim SEEDS=100000 FIRST=1
	$(MAKE) fuzz-run FUZZ_SECONDS=60

bench: $(BENCH_BIN)

bench-replication: build/chronik $(BENCH_BIN) deps-test
	$(PYTHON) bench/replication.py $(BENCH_ARGS)

bench-transactions: build/chronik
	$(PYTHON) bench/transactions.py $(BENCH_ARGS)

format:
	clang-format -i $$(find src tests bench -name '*.[ch]' ! -path 'src/proto/gen/*')

clean:
	rm -rf build
