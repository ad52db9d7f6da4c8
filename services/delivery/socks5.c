#include "socks5.h"
#include "error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

size_t socks5_greeting(uint8_t *buf, int with_userpass)
{
	buf[0] = SOCKS5_VERSION;
	buf[1] = with_userpass ? 2 : 1;
	buf[2] = SOCKS5_METHOD_NONE;
	if (!with_userpass)
		return 3;
	buf[3] = SOCKS5_METHOD_USERPASS;
	return 4;
}

int socks5_method_reply(const uint8_t *buf, size_t len, int offered_userpass,
			uint8_t *method_r, const char **error_r)
{
	if (len != 2 || buf[0] != SOCKS5_VERSION) {
		*error_r = "SOCKS5: not a SOCKS5 proxy (bad method reply)";
		return -1;
	}
	if (buf[1] == SOCKS5_METHOD_NONE ||
	    (buf[1] == SOCKS5_METHOD_USERPASS && offered_userpass)) {
		*method_r = buf[1];
		return 0;
	}
	if (buf[1] == SOCKS5_METHOD_UNACCEPTABLE)
		*error_r = offered_userpass ? "SOCKS5: the proxy accepts none of our methods" :
			   "SOCKS5: the proxy wants authentication (configure socks5-user)";
	else
		*error_r = mf_errorf("SOCKS5: the proxy chose method %u, which we did not offer",
				     buf[1]);
	return -1;
}

size_t socks5_userpass_request(uint8_t *buf, size_t size, const char *user,
			       const char *password)
{
	size_t ul = strlen(user), pl = strlen(password);

	if (ul == 0 || ul > SOCKS5_USER_MAX || pl == 0 || pl > SOCKS5_PASSWORD_MAX ||
	    size < 3 + ul + pl)
		return 0;
	/* RFC 1929 2: version 1 of the subnegotiation. */
	buf[0] = 1;
	buf[1] = (uint8_t)ul;
	memcpy(buf + 2, user, ul);
	buf[2 + ul] = (uint8_t)pl;
	memcpy(buf + 3 + ul, password, pl);
	return 3 + ul + pl;
}

int socks5_userpass_reply(const uint8_t *buf, size_t len, const char **error_r)
{
	if (len != 2 || buf[0] != 1) {
		*error_r = "SOCKS5: bad authentication reply";
		return -1;
	}
	if (buf[1] != 0) {
		*error_r = "SOCKS5: the proxy refused our user name and password";
		return -1;
	}
	return 0;
}

size_t socks5_connect_request(uint8_t *buf, const char *ip, unsigned port)
{
	size_t n;

	buf[0] = SOCKS5_VERSION;
	buf[1] = 1;  /* CONNECT */
	buf[2] = 0;
	if (inet_pton(AF_INET, ip, buf + 4) == 1) {
		buf[3] = 1;
		n = 4 + 4;
	} else if (inet_pton(AF_INET6, ip, buf + 4) == 1) {
		buf[3] = 4;
		n = 4 + 16;
	} else {
		return 0;
	}
	buf[n] = (uint8_t)(port >> 8);
	buf[n + 1] = (uint8_t)port;
	return n + 2;
}

static const char *reply_text(uint8_t rep)
{
	/* RFC 1928 6. */
	switch (rep) {
	case 1: return "general SOCKS server failure";
	case 2: return "connection not allowed by ruleset";
	case 3: return "network unreachable";
	case 4: return "host unreachable";
	case 5: return "connection refused";
	case 6: return "TTL expired";
	case 7: return "command not supported";
	case 8: return "address type not supported";
	default: return "unknown error";
	}
}

int socks5_connect_reply(const uint8_t *buf, size_t len, size_t *need_r, const char **error_r)
{
	size_t need;

	*need_r = 5;
	if (len < 5)
		return 1;
	if (buf[0] != SOCKS5_VERSION || buf[2] != 0) {
		*error_r = "SOCKS5: malformed CONNECT reply";
		return -1;
	}
	if (buf[1] != 0) {
		*error_r = mf_errorf("SOCKS5: the proxy could not connect: %s (%u)",
				     reply_text(buf[1]), buf[1]);
		return -1;
	}
	switch (buf[3]) {
	case 1: need = 4 + 4 + 2; break;
	case 4: need = 4 + 16 + 2; break;
	case 3: need = 4 + 1 + (size_t)buf[4] + 2; break;
	default:
		*error_r = mf_errorf("SOCKS5: bad address type %u in the reply", buf[3]);
		return -1;
	}
	*need_r = need;
	if (len < need)
		return 1;
	if (len > need) {
		/* Nothing may come before the destination's own bytes; the
		 * caller reads exactly need bytes, so this is a caller bug or a
		 * fuzzer: refuse rather than guess. */
		*error_r = "SOCKS5: extra bytes after the CONNECT reply";
		return -1;
	}
	return 0;
}

static int wait_fd(int fd, short events, unsigned timeout_ms, const char **error_r)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		*error_r = "SOCKS5: timeout";
		return -1;
	}
	if (r < 0) {
		*error_r = mf_errorf("SOCKS5: poll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len, unsigned timeout_ms,
		     const char **error_r)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, timeout_ms, error_r) < 0)
				return -1;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			*error_r = mf_errorf("SOCKS5: write: %s", strerror(errno));
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Reads exactly len bytes: the proxy's replies have known lengths, and
 * reading past them would swallow the destination's greeting. */
static int read_exact(int fd, uint8_t *p, size_t len, unsigned timeout_ms, const char **error_r)
{
	while (len > 0) {
		ssize_t r = recv(fd, p, len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLIN, timeout_ms, error_r) < 0)
				return -1;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = mf_errorf("SOCKS5: read: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			*error_r = "SOCKS5: the proxy closed the connection";
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int socks5_connect(int fd, const char *ip, unsigned port, const char *user,
		   const char *password, unsigned timeout_ms, const char **error_r)
{
	uint8_t buf[3 + SOCKS5_USER_MAX + SOCKS5_PASSWORD_MAX];
	uint8_t method;
	size_t n, have, need;
	int r;

	n = socks5_greeting(buf, user != NULL);
	if (write_all(fd, buf, n, timeout_ms, error_r) < 0 ||
	    read_exact(fd, buf, 2, timeout_ms, error_r) < 0 ||
	    socks5_method_reply(buf, 2, user != NULL, &method, error_r) < 0)
		return -1;
	if (method == SOCKS5_METHOD_USERPASS) {
		n = socks5_userpass_request(buf, sizeof(buf), user, password != NULL ? password : "");
		if (n == 0) {
			*error_r = "SOCKS5: user name or password empty or longer than 255 bytes";
			return -1;
		}
		r = write_all(fd, buf, n, timeout_ms, error_r);
		memset(buf, 0, sizeof(buf));
		if (r < 0 || read_exact(fd, buf, 2, timeout_ms, error_r) < 0 ||
		    socks5_userpass_reply(buf, 2, error_r) < 0)
			return -1;
	}
	n = socks5_connect_request(buf, ip, port);
	if (n == 0) {
		*error_r = mf_errorf("SOCKS5: not an IP address: %s", ip);
		return -1;
	}
	if (write_all(fd, buf, n, timeout_ms, error_r) < 0)
		return -1;
	have = 0;
	need = 5;
	for (;;) {
		if (read_exact(fd, buf + have, need - have, timeout_ms, error_r) < 0)
			return -1;
		have = need;
		r = socks5_connect_reply(buf, have, &need, error_r);
		if (r <= 0)
			return r;
	}
}
