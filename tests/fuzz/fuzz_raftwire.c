/* fuzz_raftwire.c - libFuzzer target: arbitrary bytes as the body of a Kafka
 * Raft API message (what a peer's controller connection or a voter's
 * response carries), decoded as the metadata quorum decodes it
 * (raft_wire_decode). Byte 0 picks the message type. Must never crash or
 * leak; a message that decodes re-encodes and decodes again to the same
 * type. */
#include <string.h>

#include "base/util.h"
#include "raft/wire.h"

#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size < 1)
        return 0;
    raft_msg_type_t type = (raft_msg_type_t)(data[0] % RAFT_MSG_TYPE_COUNT);
    raft_wire_topic_t tp = {.name = "__cluster_metadata", .id = {.b = {[15] = 1}}, .partition = 0};
    arena_t a;
    arena_init(&a);
    raft_msg_t m;
    char why[RAFT_WIRE_WHY_MAX];
    if (raft_wire_decode(type, data + 1, size - 1, &tp, &a, &m, why, sizeof why) == 0) {
        buf_t w;
        buf_init(&w);
        raft_wire_encode(&m, &tp, &a, &w);
        raft_msg_t again;
        CK_ASSERT(raft_wire_decode(type, w.data, w.len, &tp, &a, &again, why, sizeof why) == 0);
        CK_ASSERT(again.type == m.type);
        buf_free(&w);
    } else {
        CK_ASSERT(why[0] != 0);
    }
    arena_free(&a);
    return 0;
}
