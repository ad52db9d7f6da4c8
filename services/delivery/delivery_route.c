#include "delivery_route.h"
#include "error.h"

#include <string.h>

static int by_name(const struct mf_domains *d, const char *name, struct delivery_transport *t,
		   const char **error_r)
{
	const struct mf_transport *conf;

	memset(t, 0, sizeof(*t));
	t->name = name;
	if (*name == '\0' || strcmp(name, "direct") == 0) {
		t->kind = DELIVERY_TRANSPORT_DIRECT;
		t->name = "direct";
		return 0;
	}
	if (strcmp(name, "local") == 0) {
		t->kind = DELIVERY_TRANSPORT_LOCAL;
		return 0;
	}
	conf = d != NULL ? mf_domains_find_transport(d, name) : NULL;
	if (conf == NULL) {
		*error_r = mf_errorf("transport %s is not configured in domains.conf", name);
		return -1;
	}
	t->conf = conf;
	switch (conf->kind) {
	case MF_TRANSPORT_SMTP: t->kind = DELIVERY_TRANSPORT_SMTP; break;
	case MF_TRANSPORT_SUBMISSION: t->kind = DELIVERY_TRANSPORT_SUBMISSION; break;
	case MF_TRANSPORT_SUBMISSIONS: t->kind = DELIVERY_TRANSPORT_SUBMISSIONS; break;
	case MF_TRANSPORT_SOCKS5: t->kind = DELIVERY_TRANSPORT_SOCKS5; break;
	}
	return 0;
}

int delivery_transport_select(const struct mf_domains *d, const char *job_transport,
			      const char *account, const char *from_domain, const char *to_domain,
			      unsigned attempt, bool local_default, struct delivery_transport *t_r,
			      const char **error_r)
{
	const struct mf_route *r;

	if (*job_transport != '\0')
		return by_name(d, job_transport, t_r, error_r);
	r = d != NULL ? mf_domains_route(d, *account != '\0' ? account : NULL, from_domain,
					 to_domain, attempt) : NULL;
	if (r != NULL)
		return by_name(d, r->transport, t_r, error_r);
	return by_name(d, local_default ? "local" : "direct", t_r, error_r);
}
