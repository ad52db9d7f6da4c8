/* mailfleet probe: see cmd_probe.h.  Docker's HEALTHCHECK runs it every few
 * seconds, so it is small, asks no resolver and never waits unbounded. */
#include "cmd_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

static _Thread_local char probe_error[256];

static const char *probe_errorf(const char *what, int err)
{
	snprintf(probe_error, sizeof(probe_error), "%s: %s", what, strerror(err));
	return probe_error;
}

static int is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

int cli_probe_parse_url(const char *url, struct cli_probe_target *target_r,
			const char **error_r)
{
	const char *p, *host, *host_end, *port_start;
	char *end;
	size_t hlen;
	unsigned long port;

	memset(target_r, 0, sizeof(*target_r));
	if (strncmp(url, "http://", 7) != 0) {
		*error_r = "URL must start with http://";
		return -1;
	}
	p = url + 7;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL) {
			*error_r = "unterminated [ in URL";
			return -1;
		}
		port_start = host_end + 1;
	} else {
		host = p;
		host_end = host + strcspn(host, ":/");
		port_start = host_end;
	}
	hlen = (size_t)(host_end - host);
	if (hlen == 9 && strncmp(host, "localhost", 9) == 0) {
		memcpy(target_r->host, "127.0.0.1", 10);
	} else {
		if (hlen == 0 || hlen >= sizeof(target_r->host)) {
			*error_r = "bad host in URL";
			return -1;
		}
		memcpy(target_r->host, host, hlen);
		target_r->host[hlen] = '\0';
	}
	if (!is_loopback(target_r->host)) {
		*error_r = "host must be a loopback address (127.0.0.0/8, [::1], localhost)";
		return -1;
	}
	if (*port_start != ':') {
		*error_r = "URL needs a port";
		return -1;
	}
	errno = 0;
	port = strtoul(port_start + 1, &end, 10);
	if (errno != 0 || end == port_start + 1 || port == 0 || port > 65535 ||
	    (*end != '\0' && *end != '/')) {
		*error_r = "bad port in URL";
		return -1;
	}
	target_r->port = (uint16_t)port;
	p = *end == '\0' ? "/healthz" : end;
	if (strlen(p) > CLI_PROBE_PATH_MAX) {
		*error_r = "path too long";
		return -1;
	}
	/* The path goes into the request line: no spaces or control bytes. */
	for (const char *c = p; *c != '\0'; c++) {
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			*error_r = "bad character in path";
			return -1;
		}
	}
	memcpy(target_r->path, p, strlen(p) + 1);
	return 0;
}

int cli_probe_parse_status(const char *buf, size_t len, int *status_r)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n = nl == NULL ? len : (size_t)(nl - buf);

	/* "HTTP/1.x NNN" : RFC 9112 section 4. */
	if (n >= 5 && memcmp(buf, "HTTP/", 5) != 0)
		return -1;
	if (n < 5 && memcmp(buf, "HTTP/", n) != 0)
		return -1;
	if (nl == NULL)
		return 0;
	if (n < 12 || buf[5] < '0' || buf[5] > '9' || buf[6] != '.' ||
	    buf[7] < '0' || buf[7] > '9' || buf[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
	if (n > 12 && buf[12] != ' ' && buf[12] != '\r')
		return -1;
	*status_r = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (*status_r < 100 || *status_r > 599)
		return -1;
	return 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline; returns 0, or -1 with error_r. */
static int wait_fd(int fd, short events, long long deadline, const char *what,
		   const char **error_r)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0) {
			snprintf(probe_error, sizeof(probe_error), "%s: timed out", what);
			*error_r = probe_error;
			return -1;
		}
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			*error_r = probe_errorf(what, errno);
			return -1;
		}
	}
}

int cli_probe_get(const struct cli_probe_target *target, int timeout_ms,
		  const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	long long deadline = now_ms() + timeout_ms;
	char req[CLI_PROBE_PATH_MAX + 128];
	char resp[CLI_PROBE_STATUS_LINE_MAX];
	size_t reqlen, sent = 0, got = 0;
	int fd = -1, ret = -1, status = 0, r, soerr;
	socklen_t soerrlen = sizeof(soerr);
	ssize_t n;

	memset(&ss, 0, sizeof(ss));
	if (strchr(target->host, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(target->port);
		inet_pton(AF_INET6, target->host, &s6->sin6_addr);
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(target->port);
		inet_pton(AF_INET, target->host, &s4->sin_addr);
		sslen = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = probe_errorf("socket", errno);
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		if (errno != EINPROGRESS) {
			*error_r = probe_errorf("connect", errno);
			goto out;
		}
		if (wait_fd(fd, POLLOUT, deadline, "connect", error_r) < 0)
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerrlen) < 0 || soerr != 0) {
			*error_r = probe_errorf("connect", soerr != 0 ? soerr : errno);
			goto out;
		}
	}
	r = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s%s%s:%u\r\n"
		     "User-Agent: mailfleet-probe\r\nConnection: close\r\n\r\n",
		     target->path, strchr(target->host, ':') ? "[" : "", target->host,
		     strchr(target->host, ':') ? "]" : "", (unsigned)target->port);
	if (r < 0 || (size_t)r >= sizeof(req)) {
		*error_r = "request too long";
		goto out;
	}
	reqlen = (size_t)r;
	while (sent < reqlen) {
		if (wait_fd(fd, POLLOUT, deadline, "send", error_r) < 0)
			goto out;
		n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			*error_r = probe_errorf("send", errno);
			goto out;
		}
		sent += (size_t)n;
	}
	for (;;) {
		r = cli_probe_parse_status(resp, got, &status);
		if (r == 1)
			break;
		if (r < 0 || got == sizeof(resp)) {
			*error_r = "the answer is not HTTP";
			goto out;
		}
		if (wait_fd(fd, POLLIN, deadline, "receive", error_r) < 0)
			goto out;
		n = recv(fd, resp + got, sizeof(resp) - got, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			*error_r = probe_errorf("receive", errno);
			goto out;
		}
		if (n == 0) {
			*error_r = "connection closed before a status line";
			goto out;
		}
		got += (size_t)n;
	}
	ret = status;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The admin address of a service from the configuration; a wildcard bind
 * is probed on the loopback address of its family. */
static int target_from_config(const char *conf_path, const char *service,
			      const char *path, struct cli_probe_target *target_r)
{
	struct mf_config *config = NULL;
	const struct mf_config_service *s;
	const char *err;
	char url[128 + CLI_PROBE_PATH_MAX];
	const char *host;
	int id = mf_service_by_name(service), ret = -1;

	if (id < 0) {
		fprintf(stderr, "mailfleet probe: unknown service %s\n", service);
		return -1;
	}
	if (mf_config_load(conf_path, &config, &err) < 0) {
		fprintf(stderr, "mailfleet probe: %s\n", err);
		return -1;
	}
	s = &config->services[id];
	if (!s->admin_set) {
		fprintf(stderr, "mailfleet probe: %s has no admin address in %s\n",
			service, conf_path);
		goto out;
	}
	host = s->admin.host;
	if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	snprintf(url, sizeof(url), strchr(host, ':') ? "http://[%s]:%u%s" : "http://%s:%u%s",
		 host, (unsigned)s->admin.port, path);
	if (cli_probe_parse_url(url, target_r, &err) < 0) {
		fprintf(stderr, "mailfleet probe: %s admin %s: %s\n", service, url, err);
		goto out;
	}
	ret = 0;
out:
	mf_config_free(&config);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: mailfleet probe [--timeout SECS] http://127.0.0.1:PORT/PATH\n"
			"       mailfleet probe [--timeout SECS] [-c mailfleet.conf] --service NAME [PATH]\n"
			"  exits 0 when the answer is 200 (PATH default /healthz)\n");
	return 2;
}

int cli_cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "service", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_probe_target target;
	const char *service = NULL, *err;
	const char *conf = getenv("MAILFLEET_CONFIG");
	int timeout_ms = CLI_PROBE_TIMEOUT_DEFAULT_MS, c, status;
	char *end;
	double secs;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			secs = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(secs > 0) ||
			    secs * 1000 > CLI_PROBE_TIMEOUT_MAX_MS)
				return usage();
			timeout_ms = (int)(secs * 1000);
			if (timeout_ms == 0)
				timeout_ms = 1;
			break;
		case 's': service = optarg; break;
		case 'c': conf = optarg; break;
		default: return usage();
		}
	}
	if (service != NULL) {
		const char *path = optind < argc ? argv[optind] : "/healthz";
		if (argc - optind > 1 || path[0] != '/')
			return usage();
		if (target_from_config(conf != NULL ? conf : "mailfleet.conf", service,
				       path, &target) < 0)
			return 1;
	} else {
		if (argc - optind != 1)
			return usage();
		if (cli_probe_parse_url(argv[optind], &target, &err) < 0) {
			fprintf(stderr, "mailfleet probe: %s: %s\n", argv[optind], err);
			return 2;
		}
	}
	status = cli_probe_get(&target, timeout_ms, &err);
	if (status < 0) {
		fprintf(stderr, "mailfleet probe: %s:%u%s: %s\n", target.host,
			(unsigned)target.port, target.path, err);
		return 1;
	}
	if (status != 200) {
		fprintf(stderr, "mailfleet probe: %s:%u%s: HTTP %d\n", target.host,
			(unsigned)target.port, target.path, status);
		return 1;
	}
	return 0;
}
