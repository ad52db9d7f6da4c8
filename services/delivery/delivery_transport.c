#include "delivery_transport.h"
#include "delivery_mx.h"
#include "buf.h"
#include "error.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int delivery_transport_secret(const char *path, char **secret_r, const char **error_r)
{
	char buf[DELIVERY_SECRET_MAX + 2];
	size_t len = 0, n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	if (fd < 0) {
		*error_r = mf_errorf("password file %s: %s", path, strerror(errno));
		return -1;
	}
	while (len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = mf_errorf("password file %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	n = 0;
	while (n < len && buf[n] != '\n' && buf[n] != '\r')
		n++;
	if (n > DELIVERY_SECRET_MAX) {
		*error_r = mf_errorf("password file %s: first line longer than %d bytes", path,
				     DELIVERY_SECRET_MAX);
		goto out;
	}
	if (n == 0 || memchr(buf, '\0', n) != NULL) {
		*error_r = mf_errorf("password file %s: %s", path,
				     n == 0 ? "empty first line" : "NUL byte in the password");
		goto out;
	}
	*secret_r = mf_xstrndup(buf, n);
	ret = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return ret;
}

size_t delivery_transport_addresses(struct mf_bus *bus, const char *host, const char *cid,
				    char addrs_r[][64], size_t max, const char **error_r)
{
	unsigned char a[16];

	if (max == 0) {
		*error_r = "no room for addresses";
		return 0;
	}
	if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1) {
		snprintf(addrs_r[0], 64, "%s", host);
		return 1;
	}
	*error_r = NULL;
	size_t n = delivery_mx_addresses(bus, host, cid, addrs_r, max, error_r);
	if (n == 0 && *error_r == NULL)
		*error_r = mf_errorf("%s has no IP address", host);
	return n;
}

int delivery_transport_setup(struct mf_bus *bus, const struct delivery_transport *t,
			     const char *cid, struct delivery_transport_setup *setup,
			     struct smtp_client_params *p, const char **error_r)
{
	const struct mf_transport *c = t->conf;
	bool verify;

	memset(setup, 0, sizeof(*setup));
	if (c == NULL) {
		*error_r = "not a configured transport";
		return -1;
	}
	if (t->kind == DELIVERY_TRANSPORT_SOCKS5) {
		char addrs[1][64];
		if (delivery_transport_addresses(bus, c->addr.host, cid, addrs, 1, error_r) == 0) {
			*error_r = mf_errorf("SOCKS5 proxy %s: %s", c->addr.host, *error_r);
			return -1;
		}
		snprintf(setup->socks5_ip, sizeof(setup->socks5_ip), "%s", addrs[0]);
		p->socks5_ip = setup->socks5_ip;
		p->socks5_port = c->addr.port;
		if (c->socks5_user != NULL) {
			if (delivery_transport_secret(c->socks5_password_file,
						      &setup->socks5_password, error_r) < 0)
				return -1;
			p->socks5_user = c->socks5_user;
			p->socks5_password = setup->socks5_password;
		}
		return 0;
	}
	p->implicit_tls = t->kind == DELIVERY_TRANSPORT_SUBMISSIONS;
	p->require_tls = t->kind != DELIVERY_TRANSPORT_SMTP;
	if (c->auth_user != NULL) {
		if (delivery_transport_secret(c->auth_password_file, &setup->auth_password,
					      error_r) < 0)
			return -1;
		p->auth_user = c->auth_user;
		p->auth_password = setup->auth_password;
		p->auth_login = c->auth_mechanism == MF_TRANSPORT_AUTH_LOGIN;
	}
	/* A password only goes to the server we mean: verify by default then. */
	verify = c->tls_verify_set ? c->tls_verify : c->auth_user != NULL;
	if (verify) {
		if (mf_tls_client_ctx_new(true, c->tls_ca_file, &setup->verify_tls, error_r) < 0) {
			delivery_transport_setup_clear(setup);
			return -1;
		}
		p->tls = setup->verify_tls;
	}
	return 0;
}

static void wipe(char **s)
{
	if (*s == NULL)
		return;
	explicit_bzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

void delivery_transport_setup_clear(struct delivery_transport_setup *setup)
{
	wipe(&setup->auth_password);
	wipe(&setup->socks5_password);
	mf_tls_ctx_free(&setup->verify_tls);
}
