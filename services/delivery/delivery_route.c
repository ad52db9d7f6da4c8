#include "delivery_route.h"
#include "buf.h"
#include "error.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int delivery_transport_parse(const char *spec, struct delivery_transport *t, const char **error_r)
{
	const char *hp, *colon;
	char *end;
	unsigned long port;
	size_t hl;
	unsigned char addr[16];

	memset(t, 0, sizeof(*t));
	if (*spec == '\0' || strcmp(spec, "direct") == 0) {
		t->kind = DELIVERY_TRANSPORT_DIRECT;
		return 0;
	}
	if (strcmp(spec, "local") == 0) {
		t->kind = DELIVERY_TRANSPORT_LOCAL;
		return 0;
	}
	if (strncmp(spec, "smtp:", 5) != 0) {
		*error_r = mf_errorf("unknown transport %s (want direct, local or smtp:HOST:PORT)", spec);
		return -1;
	}
	hp = spec + 5;
	colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp) {
		*error_r = mf_errorf("transport %s: want smtp:HOST:PORT", spec);
		return -1;
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		*error_r = mf_errorf("transport %s: bad port", spec);
		return -1;
	}
	hl = (size_t)(colon - hp);
	if (hp[0] == '[') {
		if (hl < 3 || hp[hl - 1] != ']') {
			*error_r = mf_errorf("transport %s: bad IPv6 literal", spec);
			return -1;
		}
		hp++;
		hl -= 2;
	}
	if (hl > DELIVERY_TRANSPORT_HOST_MAX) {
		*error_r = mf_errorf("transport %s: host too long", spec);
		return -1;
	}
	memcpy(t->host, hp, hl);
	t->host[hl] = '\0';
	/* Host names would need a DNS lookup through dnsauth (not done yet). */
	if (inet_pton(AF_INET, t->host, addr) != 1 && inet_pton(AF_INET6, t->host, addr) != 1) {
		*error_r = mf_errorf("transport %s: the host must be an IP address", spec);
		return -1;
	}
	t->kind = DELIVERY_TRANSPORT_SMTP;
	t->port = (unsigned)port;
	return 0;
}

static int parse_route(char *text, struct delivery_route *r, const char **error_r)
{
	char *save = NULL, *tok;
	struct delivery_transport t;

	memset(r, 0, sizeof(*r));
	for (tok = strtok_r(text, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			*error_r = mf_errorf("%s: want key=value", tok);
			return -1;
		}
		*eq++ = '\0';
		if (strcmp(tok, "from-domain") == 0 && r->from_domain == NULL)
			r->from_domain = mf_xstrdup(eq);
		else if (strcmp(tok, "to-domain") == 0 && r->to_domain == NULL)
			r->to_domain = mf_xstrdup(eq);
		else if (strcmp(tok, "min-attempt") == 0) {
			char *end;
			unsigned long v = strtoul(eq, &end, 10);
			if (*end != '\0' || v > 1000) {
				*error_r = mf_errorf("min-attempt %s: want a number up to 1000", eq);
				return -1;
			}
			r->min_attempt = (unsigned)v;
		} else if (strcmp(tok, "transport") == 0 && r->transport == NULL) {
			if (delivery_transport_parse(eq, &t, error_r) < 0)
				return -1;
			r->transport = mf_xstrdup(eq);
		} else {
			*error_r = mf_errorf("unknown or repeated key %s", tok);
			return -1;
		}
	}
	if (r->transport == NULL) {
		*error_r = "transport= missing";
		return -1;
	}
	return 0;
}

int delivery_routes_parse(const char *text, struct delivery_route **routes_r, size_t *count_r,
			  const char **error_r)
{
	char *copy = mf_xstrdup(text), *save = NULL, *part;
	struct delivery_route *routes = NULL;
	size_t n = 0;
	int ret = -1;

	*routes_r = NULL;
	*count_r = 0;
	for (part = strtok_r(copy, ";", &save); part != NULL; part = strtok_r(NULL, ";", &save)) {
		const char *err;
		if (strspn(part, " \t\n") == strlen(part))
			continue;
		if (n == DELIVERY_ROUTES_MAX) {
			*error_r = mf_errorf("too many routes (max %d)", DELIVERY_ROUTES_MAX);
			goto out;
		}
		routes = mf_xrealloc(routes, (n + 1) * sizeof(*routes));
		if (parse_route(part, &routes[n], &err) < 0) {
			n++;
			*error_r = mf_errorf("route %zu: %s", n, err);
			goto out;
		}
		n++;
	}
	*routes_r = routes;
	*count_r = n;
	routes = NULL;
	ret = 0;
out:
	if (routes != NULL)
		delivery_routes_free(&routes, n);
	free(copy);
	return ret;
}

void delivery_routes_free(struct delivery_route **routes, size_t count)
{
	if (*routes == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*routes)[i].from_domain);
		free((*routes)[i].to_domain);
		free((*routes)[i].transport);
	}
	free(*routes);
	*routes = NULL;
}

const struct delivery_route *delivery_route_match(const struct delivery_route *routes,
						  size_t count, const char *from_domain,
						  const char *to_domain, unsigned attempt)
{
	for (size_t i = 0; i < count; i++) {
		const struct delivery_route *r = &routes[i];
		if (r->from_domain != NULL && strcasecmp(r->from_domain, from_domain) != 0)
			continue;
		if (r->to_domain != NULL && strcasecmp(r->to_domain, to_domain) != 0)
			continue;
		if (attempt < r->min_attempt)
			continue;
		return r;
	}
	return NULL;
}
