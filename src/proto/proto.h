/*
 * proto.h - the Kafka codec: generated structs for every request, response,
 * header and record in the Kafka schemas, and one strict descriptor-driven
 * decoder/encoder that handles all of them.
 *
 * Generated structs (src/proto/gen/, from tools/protogen.py)
 *   A schema `ProduceRequest` becomes `struct ProduceRequest` (typedef'd to
 *   the same name) with fields named verbatim (`TopicData`, `Acks`). A nested
 *   or common struct `TopicProduceData` becomes `ProduceRequest_TopicProduceData`.
 *   Every struct has a descriptor `extern const proto_struct_desc X_desc`.
 *   Field types:
 *     bool bool; int8..int64 int8_t..int64_t; uint16 uint16_t; uint32 uint32_t;
 *     float64 double; string kstr_t; bytes, records kbytes_t; uuid kuuid_t;
 *     []T of a struct T     `T_array` = struct { int32_t count; T *items; }
 *     []T of a primitive    `kint32_array_t`, `kstr_array_t`, ... (below)
 *     a struct field        embedded by value, except a nullable struct,
 *                           which is a pointer (NULL = null).
 *   Every array type has that same layout, so code may view any of them as
 *   proto_array_t. count -1 (or len -1 for kstr_t/kbytes_t) means null.
 *   Decoded strings/bytes/records are views into the receive buffer (not
 *   NUL-terminated); arrays and pointed-to structs come from the arena.
 *   An all-zero struct is a valid value (empty strings/arrays, zero numbers),
 *   but only proto_set_defaults gives the schema defaults (-1 ids, null).
 *
 * Wire rules (KIP-482): a flexible version uses compact strings/bytes/
 * records/arrays (unsigned varint length + 1, 0 = null) and ends every struct
 * with a tagged-field section; a field may opt out ("flexibleVersions":
 * "none", the request header's ClientId). Nullable structs carry an int8
 * presence byte (-1 null, 1 present), or an unsigned varint (0 null, 1
 * present) inside a tagged field.
 *
 * Decoding is strict: every length and count is checked against the bytes
 * left and against the limits below before anything is allocated; a null
 * where the version does not allow it is an error; unknown tagged fields are
 * skipped; known ones must fill their declared size exactly. Fields absent in
 * the version keep their schema defaults. Trailing bytes after the message
 * are left in the reader for the caller to judge.
 *
 * Encoding never fails: fields absent in the version are left out, tagged
 * fields are written only when they differ from their default, and a null
 * given where the version does not allow null is written as empty (a string,
 * bytes or array). Strings longer than PROTO_STRING_MAX are a programmer
 * error. proto_size gives the exact number of bytes proto_encode writes.
 */
#ifndef CHRONIK_PROTO_H
#define CHRONIK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"

/* ---- limits ------------------------------------------------------------ */
#define PROTO_STRING_MAX 0x7fff           /* longest string (Kafka's limit) */
#define PROTO_DEPTH_MAX 16                /* deepest struct nesting */
#define PROTO_DECODE_ITEMS_MAX (1 << 22)  /* array elements per decode */
#define PROTO_DECODE_MEM_BASE (64 * 1024) /* arena bytes per decode: base ... */
#define PROTO_DECODE_MEM_FACTOR 32        /* ... plus this many per input byte, */
#define PROTO_DECODE_MEM_MAX (256u << 20) /* ... and never more than this */
#define PROTO_API_KEY_LIMIT 128           /* api keys are below this */
#define PROTO_METADATA_TYPE_LIMIT 128     /* metadata record types are below this */
#define PROTO_V_MAX 0x7fff                /* upper end of an "N+" version range */
#define PROTO_ERR_FIELD_MAX 128
#define PROTO_ERR_REASON_MAX 112
#define PROTO_ERR_MSG_MAX 400             /* room for proto_err_format */

#define PROTO_API_API_VERSIONS 18
#define PROTO_API_CONTROLLED_SHUTDOWN 7
#define PROTO_API_SASL_HANDSHAKE 17
#define PROTO_API_SASL_AUTHENTICATE 36

/* ---- value types --------------------------------------------------------- */
typedef struct kstr { const char *ptr; int32_t len; } kstr_t;       /* len -1: null */
typedef struct kbytes { const uint8_t *ptr; int32_t len; } kbytes_t; /* len -1: null */
typedef struct kuuid { uint8_t b[16]; } kuuid_t;

typedef struct proto_array { int32_t count; void *items; } proto_array_t; /* count -1: null */
typedef struct kbool_array { int32_t count; bool *items; } kbool_array_t;
typedef struct kint8_array { int32_t count; int8_t *items; } kint8_array_t;
typedef struct kint16_array { int32_t count; int16_t *items; } kint16_array_t;
typedef struct kuint16_array { int32_t count; uint16_t *items; } kuint16_array_t;
typedef struct kint32_array { int32_t count; int32_t *items; } kint32_array_t;
typedef struct kuint32_array { int32_t count; uint32_t *items; } kuint32_array_t;
typedef struct kint64_array { int32_t count; int64_t *items; } kint64_array_t;
typedef struct kfloat64_array { int32_t count; double *items; } kfloat64_array_t;
typedef struct kstr_array { int32_t count; kstr_t *items; } kstr_array_t;
typedef struct kbytes_array { int32_t count; kbytes_t *items; } kbytes_array_t;
typedef struct kuuid_array { int32_t count; kuuid_t *items; } kuuid_array_t;

#define KSTR_NULL ((kstr_t){NULL, -1})
#define KSTR_LIT(s) ((kstr_t){(s), (int32_t)(sizeof(s) - 1)})
static inline bool kstr_is_null(kstr_t s) { return s.len < 0; }
kstr_t kstr_from(const char *s);           /* NULL gives the null string */
bool kstr_eq(kstr_t a, const char *s);     /* a null string equals only NULL */

/* ---- descriptors --------------------------------------------------------- */
typedef enum proto_type {
    PROTO_T_BOOL, PROTO_T_INT8, PROTO_T_INT16, PROTO_T_UINT16, PROTO_T_INT32,
    PROTO_T_UINT32, PROTO_T_INT64, PROTO_T_FLOAT64, PROTO_T_STRING, PROTO_T_BYTES,
    PROTO_T_RECORDS, PROTO_T_UUID, PROTO_T_STRUCT,
} proto_type;

enum {
    PROTO_F_ARRAY = 1,   /* an array of `type` */
    PROTO_F_NOFLEX = 2,  /* never compact, even in flexible versions */
    PROTO_F_PTR = 4,     /* nullable struct held by pointer */
    PROTO_F_DEFNULL = 8, /* schema default is null */
};

struct proto_struct_desc;

/* Version ranges are inclusive; an empty range has min > max. */
typedef struct proto_field_desc {
    const char *name;        /* verbatim schema name */
    uint32_t offset;         /* offsetof in the C struct */
    uint8_t type;            /* proto_type of the value or of array items */
    uint8_t flags;           /* PROTO_F_* */
    int16_t ver_min, ver_max;
    int16_t null_min, null_max;
    int16_t tag_min, tag_max;
    int32_t tag;             /* -1: never tagged */
    const struct proto_struct_desc *sub; /* for PROTO_T_STRUCT */
    int64_t def_i;           /* default of integers and bools */
    double def_f;            /* default of float64 */
    const char *def_s;       /* non-empty string default, else NULL */
} proto_field_desc;

/* Untagged fields come first in wire order, then tagged ones by tag. */
typedef struct proto_struct_desc {
    const char *name;        /* C type name */
    const proto_field_desc *fields;
    uint16_t nfields;
    uint32_t size;           /* sizeof the C struct */
    int16_t api_key;         /* of the schema it belongs to; -1 if none */
    int16_t min_version, max_version; /* the schema's valid versions */
    int16_t flexible_min;    /* first flexible version, -1: none */
    bool is_root;            /* a whole schema, not a nested struct */
} proto_struct_desc;

enum { PROTO_LISTENER_ZKBROKER = 1, PROTO_LISTENER_BROKER = 2, PROTO_LISTENER_CONTROLLER = 4 };

typedef struct proto_api_desc {
    int16_t api_key;
    const char *name;        /* "Produce" */
    int16_t min_version, max_version;
    int16_t flexible_min;    /* first flexible request version, -1: none */
    int16_t resp_flexible_min;
    uint8_t listeners;       /* PROTO_LISTENER_* the schema lists */
    bool latest_unstable;    /* newest version not yet stable */
    const proto_struct_desc *request, *response;
} proto_api_desc;

typedef enum proto_rec_kind { PROTO_REC_METADATA, PROTO_REC_GROUP, PROTO_REC_INTERNAL } proto_rec_kind;

typedef struct proto_record_desc {
    const char *name;
    proto_rec_kind kind;
    int16_t type;            /* metadata: the record type (apiKey); else -1 */
    int16_t min_version, max_version;
    int16_t flexible_min;
    const proto_struct_desc *desc;
    const proto_struct_desc *value; /* for a ...Key record: its ...Value, else NULL */
} proto_record_desc;

#include "proto/gen/kafka_msgs.h"
#include "proto/gen/kafka_records.h"

/* Generated tables. */
extern const proto_api_desc proto_api_table[];                 /* by api key */
extern const size_t proto_api_table_count;
extern const proto_api_desc *const proto_api_by_key[PROTO_API_KEY_LIMIT];
extern const proto_struct_desc *const proto_message_descs[];   /* messages/ */
extern const size_t proto_message_descs_count;
extern const proto_record_desc proto_record_table[];           /* by name */
extern const size_t proto_record_table_count;
extern const proto_record_desc *const proto_metadata_by_type[PROTO_METADATA_TYPE_LIMIT];
extern const proto_struct_desc *const proto_record_descs[];    /* records */
extern const size_t proto_record_descs_count;

/* ---- errors -------------------------------------------------------------- */
typedef struct proto_err {
    int16_t api_key;         /* -1 if the struct is not a request/response */
    int16_t version;
    const char *msg_name;    /* top-level struct name, e.g. "ProduceRequest" */
    size_t offset;           /* reader offset where the bad value starts */
    char field[PROTO_ERR_FIELD_MAX];   /* "TopicData[0].PartitionData", or "" */
    char reason[PROTO_ERR_REASON_MAX];
} proto_err_t;

/* "ProduceRequest v9: field TopicData[0].PartitionData: array count ...
 * at offset 41". Returns buf (n >= 1; PROTO_ERR_MSG_MAX is always enough). */
const char *proto_err_format(const proto_err_t *e, char *buf, size_t n);

/* ---- the codec ----------------------------------------------------------- */
/* Decode one struct of `version` from r into out (d->size bytes, need not be
 * initialised). Returns 0, or -1 with err filled; out is then unspecified.
 * Memory comes from the arena only. */
int proto_decode(const proto_struct_desc *d, int16_t version, bool flexible, rd_t *r,
                 arena_t *a, void *out, proto_err_t *err);
void proto_encode(const proto_struct_desc *d, int16_t version, bool flexible, const void *in,
                  buf_t *w);
size_t proto_size(const proto_struct_desc *d, int16_t version, bool flexible, const void *in);
/* Zero-copy records (Fetch responses served with sendfile): a `records`
 * field with ptr NULL and len > 0 is a hole. Its length prefix is written,
 * then hole(arg, pos, len) is called with pos = w->len, the offset in w where
 * the bytes belong; they are NOT written to w (holes take no room in w) and
 * encoding goes on after them. w->data may move while encoding, so the
 * callback must read it through the buf_t, not a pointer saved earlier.
 * proto_size counts hole bytes as if present. Without a hook (proto_encode)
 * such a field is a programmer error. */
typedef void (*proto_hole_fn)(void *arg, size_t pos, size_t len);
void proto_encode_holes(const proto_struct_desc *d, int16_t version, bool flexible,
                        const void *in, buf_t *w, proto_hole_fn hole, void *arg);
/* Schema defaults into out: numbers, bools, strings, null; arrays empty (or
 * null when that is the default); nested structs recursively. */
void proto_set_defaults(const proto_struct_desc *d, int16_t version, void *out);
/* Field-by-field comparison over every field (views compared by content).
 * proto_diff also names the first difference ("Topics[2].Name") in path. */
bool proto_equal(const proto_struct_desc *d, const void *a, const void *b);
bool proto_diff(const proto_struct_desc *d, const void *a, const void *b, char *path, size_t n);

/* Building messages: a struct from the arena with its schema defaults, and
 * an array of count elements (each with defaults when d is a struct
 * descriptor, zeroed for primitives when d is NULL); sets array->count and
 * ->items and returns items (NULL when count is 0). */
void *proto_new(arena_t *a, const proto_struct_desc *d);
void *proto_array_init(arena_t *a, void *array, int32_t count, size_t elem_size,
                       const proto_struct_desc *d);

/* Whether version of the schema d is flexible (d->flexible_min rule). */
bool proto_flexible(const proto_struct_desc *d, int16_t version);

/* ---- APIs and headers ---------------------------------------------------- */
const proto_api_desc *proto_api(int16_t api_key); /* NULL if unknown */
static inline bool proto_api_version_ok(const proto_api_desc *api, int16_t version)
{
    return api && version >= api->min_version && version <= api->max_version;
}
/* Flexibility follows the version number (also past max_version); false for
 * an unknown api key. */
bool proto_request_flexible(int16_t api_key, int16_t version);
bool proto_response_flexible(int16_t api_key, int16_t version);
/* Header versions: request 0 (ControlledShutdown v0), 1, or 2 (flexible);
 * response 0, or 1 when flexible (never for ApiVersions). -1: unknown key. */
int16_t proto_request_header_version(int16_t api_key, int16_t version);
int16_t proto_response_header_version(int16_t api_key, int16_t version);

typedef struct proto_req_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kstr_t client_id;        /* null when absent (header v0) or sent as null */
    int16_t header_version;  /* 0, 1 or 2 */
    bool flexible;           /* the request body is in a flexible version */
    bool version_ok;         /* api_version within the api's valid versions */
    const proto_api_desc *api; /* never NULL after a successful decode */
} proto_req_header_t;

/* Reads api key and version, picks the header version from them and decodes
 * the header. Fails on an unknown api key (h->api_key, api_version and, when
 * present, correlation_id are still filled for logging). A known key with an
 * unsupported version decodes (version_ok false) so the caller can answer
 * UNSUPPORTED_VERSION. The body follows at r. */
int proto_request_header_decode(rd_t *r, arena_t *a, proto_req_header_t *h, proto_err_t *err);
/* Header from h->api_key, api_version, correlation_id, client_id. */
void proto_request_header_encode(const proto_req_header_t *h, buf_t *w);
void proto_response_header_encode(int16_t api_key, int16_t api_version, int32_t correlation_id,
                                  buf_t *w);
int proto_response_header_decode(rd_t *r, arena_t *a, int16_t api_key, int16_t api_version,
                                 int32_t *correlation_id, proto_err_t *err);

/* Header + body (no 4-byte size prefix) for a known api key and version. */
void proto_request_encode(int16_t api_key, int16_t api_version, int32_t correlation_id,
                          kstr_t client_id, const void *body, buf_t *w);
void proto_response_encode(int16_t api_key, int16_t api_version, int32_t correlation_id,
                           const void *body, buf_t *w);
/* proto_response_encode with the zero-copy records hook of proto_encode_holes. */
void proto_response_encode_holes(int16_t api_key, int16_t api_version, int32_t correlation_id,
                                 const void *body, buf_t *w, proto_hole_fn hole, void *arg);
/* Body of a request/response whose header was read: checks the version. */
int proto_request_body_decode(const proto_req_header_t *h, rd_t *r, arena_t *a, void *out,
                              proto_err_t *err);

/* ---- records ------------------------------------------------------------- */
const proto_record_desc *proto_metadata_record(int16_t type); /* NULL if unknown */
/* The __consumer_offsets key whose version (the key's type) is key_version;
 * ->value is the matching value schema. NULL if unknown. */
const proto_record_desc *proto_group_record(int16_t key_version);
/* The keys and values of internal topics (__consumer_offsets,
 * __transaction_state): int16 version, then the body of that version.
 * Decoding reads a version newer than the schema's newest as the newest
 * (KIP-915: later versions only add tagged fields); 0, or -1. */
void proto_versioned_encode(const proto_struct_desc *d, int16_t version, const void *body, buf_t *out);
int proto_versioned_decode(const proto_struct_desc *d, const uint8_t *p, int32_t len, arena_t *a, void *out);
const proto_record_desc *proto_record_by_name(const char *name);

#endif
