/* testserver: real servers for unit tests (redis-server), on random free
 * loopback ports, stopped by pid.  Failures end the test (cmocka asserts). */
#ifndef MF_TESTSERVER_H
#define MF_TESTSERVER_H

#include <stdbool.h>
#include <sys/types.h>

/* Returns a TCP port on 127.0.0.1 that nobody listens on right now. */
int mf_test_free_port(void);
/* Returns true when something accepts connections on 127.0.0.1:port. */
bool mf_test_port_open(int port);
/* Starts redis-server on 127.0.0.1:port without persistence (password may be
 * NULL) and waits until it accepts connections.  Returns its pid. */
pid_t mf_test_redis_start(int port, const char *password);
/* Stops a server started here (also a SIGSTOPped one); sets *pid to 0. */
void mf_test_server_stop(pid_t *pid);

#endif
