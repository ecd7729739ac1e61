/*
 * local.h - `chronik cluster local`: an N-node cluster on this machine in one
 * command, for development, tests and demos. The launcher starts N child
 * `chronik server` processes (the same binary), waits until every one is
 * ready, prints one ready line and then supervises them until it is told to
 * stop (SIGINT, SIGTERM) or one of them dies.
 */
#ifndef CHRONIK_ADMIN_LOCAL_H
#define CHRONIK_ADMIN_LOCAL_H

#define LOCAL_NODES_MAX 9
#define LOCAL_BASE_PORT_DEFAULT 9092
#define LOCAL_DATA_DIR_DEFAULT "./chronik-cluster"
/* Node K (1..N) listens on these ports, counted from the base port P. */
#define LOCAL_CLIENT_OFFSET 0       /* clients:    P + K - 1        (9092...) */
#define LOCAL_CONTROLLER_OFFSET 100 /* controller: P + 100 + K - 1  (9192...) */
#define LOCAL_ADMIN_OFFSET 552      /* admin HTTP: P + 552 + K - 1  (9644...) */

/* argv[0] is "local". Returns the process exit code: 0 stopped by a signal
 * with every node exiting 0, 1 a node died (or could not be started), was
 * not ready in time or did not stop cleanly, 2 bad arguments. */
int local_main(int argc, char **argv);

#endif
