/*
 * broker.h - one node: the client listener, request dispatch to one handler
 * per Kafka API, and the state the handlers share.
 */
#ifndef CHRONIK_BROKER_BROKER_H
#define CHRONIK_BROKER_BROKER_H

#include "broker/config.h"

/* Run a node until broker_request_stop(); returns the process exit code. */
int broker_run(const config *cfg);

/* Ask a running node to shut down gracefully. Async-signal-safe. */
void broker_request_stop(void);

/* Ask a running node to read its TLS certificate files again now (SIGHUP).
 * Async-signal-safe. */
void broker_request_tls_reload(void);

#endif
