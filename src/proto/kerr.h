/*
 * kerr.h - Kafka error codes, from one X-macro table: the numeric code, the
 * name Kafka uses, whether a client may retry, and a short message.
 */
#ifndef CHRONIK_PROTO_KERR_H
#define CHRONIK_PROTO_KERR_H

#include <stdbool.h>
#include <stdint.h>

#define KERR_TABLE(X)                                                                       \
    X(UNKNOWN_SERVER_ERROR, -1, false, "unexpected server error")                           \
    X(NONE, 0, false, "no error")                                                           \
    X(OFFSET_OUT_OF_RANGE, 1, false, "offset out of range")                                 \
    X(CORRUPT_MESSAGE, 2, true, "record batch failed its CRC or is malformed")              \
    X(UNKNOWN_TOPIC_OR_PARTITION, 3, true, "unknown topic or partition")                    \
    X(INVALID_FETCH_SIZE, 4, false, "invalid fetch size")                                   \
    X(LEADER_NOT_AVAILABLE, 5, true, "leader not available")                                \
    X(NOT_LEADER_OR_FOLLOWER, 6, true, "not the leader for this partition")                 \
    X(REQUEST_TIMED_OUT, 7, true, "request timed out")                                      \
    X(BROKER_NOT_AVAILABLE, 8, false, "broker not available")                               \
    X(REPLICA_NOT_AVAILABLE, 9, true, "replica not available")                              \
    X(MESSAGE_TOO_LARGE, 10, false, "record batch larger than allowed")                     \
    X(STALE_CONTROLLER_EPOCH, 11, false, "stale controller epoch")                          \
    X(OFFSET_METADATA_TOO_LARGE, 12, false, "offset metadata too large")                    \
    X(NETWORK_EXCEPTION, 13, true, "network error")                                         \
    X(COORDINATOR_LOAD_IN_PROGRESS, 14, true, "coordinator is loading")                     \
    X(COORDINATOR_NOT_AVAILABLE, 15, true, "coordinator not available")                     \
    X(NOT_COORDINATOR, 16, true, "not the coordinator")                                     \
    X(INVALID_TOPIC_EXCEPTION, 17, false, "invalid topic name")                             \
    X(RECORD_LIST_TOO_LARGE, 18, false, "record list too large")                            \
    X(NOT_ENOUGH_REPLICAS, 19, true, "not enough in-sync replicas")                         \
    X(NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20, true, "written, but ISR shrank below minimum")  \
    X(INVALID_REQUIRED_ACKS, 21, false, "acks must be -1, 0 or 1")                          \
    X(ILLEGAL_GENERATION, 22, false, "illegal generation")                                  \
    X(INCONSISTENT_GROUP_PROTOCOL, 23, false, "inconsistent group protocol")                \
    X(INVALID_GROUP_ID, 24, false, "invalid group id")                                      \
    X(UNKNOWN_MEMBER_ID, 25, false, "unknown member id")                                    \
    X(INVALID_SESSION_TIMEOUT, 26, false, "invalid session timeout")                        \
    X(REBALANCE_IN_PROGRESS, 27, false, "rebalance in progress")                            \
    X(INVALID_COMMIT_OFFSET_SIZE, 28, false, "invalid commit offset size")                  \
    X(TOPIC_AUTHORIZATION_FAILED, 29, false, "topic authorization failed")                  \
    X(GROUP_AUTHORIZATION_FAILED, 30, false, "group authorization failed")                  \
    X(CLUSTER_AUTHORIZATION_FAILED, 31, false, "cluster authorization failed")              \
    X(INVALID_TIMESTAMP, 32, false, "invalid timestamp")                                    \
    X(UNSUPPORTED_SASL_MECHANISM, 33, false, "unsupported SASL mechanism")                  \
    X(ILLEGAL_SASL_STATE, 34, false, "illegal SASL state")                                  \
    X(UNSUPPORTED_VERSION, 35, false, "unsupported version")                                \
    X(TOPIC_ALREADY_EXISTS, 36, false, "topic already exists")                              \
    X(INVALID_PARTITIONS, 37, false, "invalid number of partitions")                        \
    X(INVALID_REPLICATION_FACTOR, 38, false, "invalid replication factor")                  \
    X(INVALID_REPLICA_ASSIGNMENT, 39, false, "invalid replica assignment")                  \
    X(INVALID_CONFIG, 40, false, "invalid configuration")                                   \
    X(NOT_CONTROLLER, 41, true, "not the controller")                                       \
    X(INVALID_REQUEST, 42, false, "invalid request")                                        \
    X(UNSUPPORTED_FOR_MESSAGE_FORMAT, 43, false, "unsupported for message format")          \
    X(POLICY_VIOLATION, 44, false, "policy violation")                                      \
    X(OUT_OF_ORDER_SEQUENCE_NUMBER, 45, false, "out of order sequence number")              \
    X(DUPLICATE_SEQUENCE_NUMBER, 46, false, "duplicate sequence number")                    \
    X(INVALID_PRODUCER_EPOCH, 47, false, "invalid producer epoch")                          \
    X(INVALID_TXN_STATE, 48, false, "invalid transaction state")                            \
    X(INVALID_PRODUCER_ID_MAPPING, 49, false, "invalid producer id mapping")                \
    X(INVALID_TRANSACTION_TIMEOUT, 50, false, "invalid transaction timeout")                \
    X(CONCURRENT_TRANSACTIONS, 51, true, "concurrent transactions")                         \
    X(TRANSACTION_COORDINATOR_FENCED, 52, false, "transaction coordinator fenced")          \
    X(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 53, false, "transactional id authorization failed") \
    X(SECURITY_DISABLED, 54, false, "security features are disabled")                       \
    X(OPERATION_NOT_ATTEMPTED, 55, false, "operation not attempted")                        \
    X(KAFKA_STORAGE_ERROR, 56, true, "disk error on the broker")                            \
    X(LOG_DIR_NOT_FOUND, 57, false, "log directory not found")                              \
    X(SASL_AUTHENTICATION_FAILED, 58, false, "SASL authentication failed")                  \
    X(UNKNOWN_PRODUCER_ID, 59, false, "unknown producer id")                                \
    X(REASSIGNMENT_IN_PROGRESS, 60, false, "reassignment in progress")                      \
    X(DELEGATION_TOKEN_AUTH_DISABLED, 61, false, "delegation tokens disabled")              \
    X(DELEGATION_TOKEN_NOT_FOUND, 62, false, "delegation token not found")                  \
    X(DELEGATION_TOKEN_OWNER_MISMATCH, 63, false, "delegation token owner mismatch")        \
    X(DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, 64, false, "delegation token request not allowed") \
    X(DELEGATION_TOKEN_AUTHORIZATION_FAILED, 65, false, "delegation token authorization failed") \
    X(DELEGATION_TOKEN_EXPIRED, 66, false, "delegation token expired")                      \
    X(INVALID_PRINCIPAL_TYPE, 67, false, "invalid principal type")                          \
    X(NON_EMPTY_GROUP, 68, false, "group is not empty")                                     \
    X(GROUP_ID_NOT_FOUND, 69, false, "group id not found")                                  \
    X(FETCH_SESSION_ID_NOT_FOUND, 70, true, "fetch session id not found")                   \
    X(INVALID_FETCH_SESSION_EPOCH, 71, true, "invalid fetch session epoch")                 \
    X(LISTENER_NOT_FOUND, 72, true, "listener not found")                                   \
    X(TOPIC_DELETION_DISABLED, 73, false, "topic deletion disabled")                        \
    X(FENCED_LEADER_EPOCH, 74, true, "fenced leader epoch")                                 \
    X(UNKNOWN_LEADER_EPOCH, 75, true, "unknown leader epoch")                               \
    X(UNSUPPORTED_COMPRESSION_TYPE, 76, false, "unsupported compression type")              \
    X(STALE_BROKER_EPOCH, 77, false, "stale broker epoch")                                  \
    X(OFFSET_NOT_AVAILABLE, 78, true, "offset not available")                               \
    X(MEMBER_ID_REQUIRED, 79, false, "member id required")                                  \
    X(PREFERRED_LEADER_NOT_AVAILABLE, 80, true, "preferred leader not available")           \
    X(GROUP_MAX_SIZE_REACHED, 81, false, "group max size reached")                          \
    X(FENCED_INSTANCE_ID, 82, false, "fenced instance id")                                  \
    X(ELIGIBLE_LEADERS_NOT_AVAILABLE, 83, true, "eligible leaders not available")           \
    X(ELECTION_NOT_NEEDED, 84, true, "election not needed")                                 \
    X(NO_REASSIGNMENT_IN_PROGRESS, 85, false, "no reassignment in progress")                \
    X(GROUP_SUBSCRIBED_TO_TOPIC, 86, false, "group subscribed to topic")                    \
    X(INVALID_RECORD, 87, false, "invalid record")                                          \
    X(UNSTABLE_OFFSET_COMMIT, 88, true, "unstable offset commit")                           \
    X(THROTTLING_QUOTA_EXCEEDED, 89, true, "throttling quota exceeded")                     \
    X(PRODUCER_FENCED, 90, false, "producer fenced")                                        \
    X(RESOURCE_NOT_FOUND, 91, false, "resource not found")                                  \
    X(DUPLICATE_RESOURCE, 92, false, "duplicate resource")                                  \
    X(UNACCEPTABLE_CREDENTIAL, 93, false, "unacceptable credential")                        \
    X(INCONSISTENT_VOTER_SET, 94, false, "inconsistent voter set")                          \
    X(INVALID_UPDATE_VERSION, 95, false, "invalid update version")                          \
    X(FEATURE_UPDATE_FAILED, 96, false, "feature update failed")                            \
    X(PRINCIPAL_DESERIALIZATION_FAILURE, 97, false, "principal deserialization failure")    \
    X(SNAPSHOT_NOT_FOUND, 98, false, "snapshot not found")                                  \
    X(POSITION_OUT_OF_RANGE, 99, false, "position out of range")                            \
    X(UNKNOWN_TOPIC_ID, 100, true, "unknown topic id")                                      \
    X(DUPLICATE_BROKER_REGISTRATION, 101, false, "duplicate broker registration")           \
    X(BROKER_ID_NOT_REGISTERED, 102, false, "broker id not registered")                     \
    X(INCONSISTENT_TOPIC_ID, 103, true, "inconsistent topic id")                            \
    X(INCONSISTENT_CLUSTER_ID, 104, false, "inconsistent cluster id")                       \
    X(TRANSACTIONAL_ID_NOT_FOUND, 105, false, "transactional id not found")                 \
    X(FETCH_SESSION_TOPIC_ID_ERROR, 106, true, "fetch session topic id error")              \
    X(INELIGIBLE_REPLICA, 107, false, "ineligible replica")                                 \
    X(NEW_LEADER_ELECTED, 108, false, "new leader elected")                                 \
    X(OFFSET_MOVED_TO_TIERED_STORAGE, 109, false, "offset moved to tiered storage")         \
    X(FENCED_MEMBER_EPOCH, 110, false, "fenced member epoch")                               \
    X(UNRELEASED_INSTANCE_ID, 111, false, "unreleased instance id")                         \
    X(UNSUPPORTED_ASSIGNOR, 112, false, "unsupported assignor")                             \
    X(STALE_MEMBER_EPOCH, 113, false, "stale member epoch")                                 \
    X(MISMATCHED_ENDPOINT_TYPE, 114, false, "mismatched endpoint type")                     \
    X(UNSUPPORTED_ENDPOINT_TYPE, 115, false, "unsupported endpoint type")                   \
    X(UNKNOWN_CONTROLLER_ID, 116, false, "unknown controller id")

enum kerr {
#define KERR_ENUM(name, code, retriable, msg) KERR_##name = code,
    KERR_TABLE(KERR_ENUM)
#undef KERR_ENUM
};

/* "UNKNOWN_TOPIC_OR_PARTITION", or "UNKNOWN" for a code not in the table. */
const char *kerr_name(int16_t code);
const char *kerr_message(int16_t code);
bool kerr_retriable(int16_t code);

#endif
