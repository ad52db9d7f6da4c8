#include "auth_checks.h"

#include "buf.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

int auth_checks_run(struct dns_resolver *r, const struct auth_checks_settings *s,
		    const char *client_ip, const char *helo, const char *mail_from,
		    struct auth_checks **checks_r, const char **error_r)
{
	struct auth_checks *c;
	struct dns_ip ip;

	if (dns_ip_parse(client_ip, &ip) < 0) {
		*error_r = mf_errorf("bad client address %.64s", client_ip);
		return -1;
	}
	c = mf_xcalloc(1, sizeof(*c));
	struct spf_request req = {
		.ip = ip, .helo = helo, .mail_from = mail_from, .receiver = s->receiver,
	};
	spf_verify(r, &req, &c->spf);
	iprev_check(r, &ip, &c->iprev);
	for (size_t i = 0; i < s->dnsbl_count && i < AUTH_CHECKS_DNSBL_MAX; i++) {
		dnsbl_check(r, &ip, s->dnsbl_zones[i], &c->dnsbl[i]);
		c->dnsbl_zone[i] = s->dnsbl_zones[i];
		c->dnsbl_count++;
	}
	*checks_r = c;
	return 0;
}

static char *str(char *s)
{
	return s != NULL ? s : (char *)"";
}

static void fill_spf(const struct spf_outcome *o, Mailfleet__V1__SpfCheck *pb)
{
	mailfleet__v1__spf_check__init(pb);
	/* The enums have the same order (spf.h, auth.proto). */
	pb->result = (Mailfleet__V1__SpfResult)o->result;
	pb->domain = str(o->domain);
	pb->sender = str(o->sender);
	pb->explanation = str(o->explanation);
	pb->problem = str(o->problem);
	pb->mechanism = str(o->mechanism);
	pb->authentic = o->authentic;
}

void auth_checks_fill(struct auth_checks *c, Mailfleet__V1__VerifyReply *reply)
{
	size_t listed = 0, temp = 0;

	fill_spf(&c->spf.helo, &c->pb_spf[0]);
	fill_spf(&c->spf.mail_from, &c->pb_spf[1]);
	reply->spf_helo = &c->pb_spf[0];
	reply->spf_mail_from = &c->pb_spf[1];

	mailfleet__v1__iprev_check__init(&c->pb_iprev);
	c->pb_iprev.result = (Mailfleet__V1__IprevResult)c->iprev.result;
	c->pb_iprev.name = str(c->iprev.name);
	c->pb_iprev.ptr_names = c->iprev.ptr_names;
	c->pb_iprev.n_ptr_names = c->iprev.ptr_count;
	c->pb_iprev.authentic = c->iprev.authentic;
	c->pb_iprev.problem = str(c->iprev.problem);
	reply->iprev = &c->pb_iprev;

	mailfleet__v1__dnsbl_check__init(&c->pb_dnsbl);
	for (size_t i = 0; i < c->dnsbl_count; i++) {
		const struct dnsbl_outcome *o = &c->dnsbl[i];

		if (o->status == DNSBL_TEMPERROR) {
			c->pb_temperror[temp++] = (char *)c->dnsbl_zone[i];
			continue;
		}
		if (o->status != DNSBL_LISTED)
			continue;
		Mailfleet__V1__DnsblListing *l = &c->pb_listing[listed];
		mailfleet__v1__dnsbl_listing__init(l);
		l->zone = (char *)c->dnsbl_zone[i];
		l->text = str(o->text);
		for (size_t j = 0; j < o->address_count; j++) {
			char buf[64];
			if (c->pb_addresses[i][j] == NULL)
				c->pb_addresses[i][j] =
					mf_xstrdup(dns_ip_format(&o->addresses[j], buf, sizeof(buf)));
		}
		l->addresses = c->pb_addresses[i];
		l->n_addresses = o->address_count;
		c->pb_listing_ptr[listed++] = l;
	}
	c->pb_dnsbl.listed = c->pb_listing_ptr;
	c->pb_dnsbl.n_listed = listed;
	c->pb_dnsbl.temperror_zones = c->pb_temperror;
	c->pb_dnsbl.n_temperror_zones = temp;
	reply->dnsbl = &c->pb_dnsbl;
}

void auth_checks_free(struct auth_checks **checks)
{
	struct auth_checks *c = *checks;

	if (c == NULL)
		return;
	spf_verdict_clear(&c->spf);
	iprev_outcome_clear(&c->iprev);
	for (size_t i = 0; i < c->dnsbl_count; i++) {
		dnsbl_outcome_clear(&c->dnsbl[i]);
		for (size_t j = 0; j < DNSBL_ADDRESSES_MAX; j++)
			free(c->pb_addresses[i][j]);
	}
	free(c);
	*checks = NULL;
}
