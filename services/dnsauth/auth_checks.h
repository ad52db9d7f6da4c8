/* auth_checks: the SPF, iprev and DNSBL part of auth.v1.verify.  Runs the
 * checks of one SMTP transaction and fills fields 1..4 of a VerifyReply
 * (proto/auth.proto); the DKIM and DMARC part adds its own fields (30+)
 * to the same reply. */
#ifndef AUTH_CHECKS_H
#define AUTH_CHECKS_H

#include <stddef.h>

#include "auth.pb-c.h"
#include "dnsbl.h"
#include "iprev.h"
#include "resolver.h"
#include "spf.h"

/* DNSBL zones asked per transaction (mailfleet.conf allows as many). */
#define AUTH_CHECKS_DNSBL_MAX 16

struct auth_checks_settings {
	const char *receiver;          /* our host name, for SPF's %{r} */
	char *const *dnsbl_zones;      /* checked for the client's address */
	size_t dnsbl_count;
};

struct auth_checks {
	struct spf_verdict spf;
	struct iprev_outcome iprev;
	struct dnsbl_outcome dnsbl[AUTH_CHECKS_DNSBL_MAX];
	const char *dnsbl_zone[AUTH_CHECKS_DNSBL_MAX];  /* the settings' strings */
	size_t dnsbl_count;

	/* Private: the protobuf view auth_checks_fill hands out. */
	Mailfleet__V1__SpfCheck pb_spf[2];
	Mailfleet__V1__IprevCheck pb_iprev;
	Mailfleet__V1__DnsblCheck pb_dnsbl;
	Mailfleet__V1__DnsblListing pb_listing[AUTH_CHECKS_DNSBL_MAX];
	Mailfleet__V1__DnsblListing *pb_listing_ptr[AUTH_CHECKS_DNSBL_MAX];
	char *pb_addresses[AUTH_CHECKS_DNSBL_MAX][DNSBL_ADDRESSES_MAX];
	char *pb_temperror[AUTH_CHECKS_DNSBL_MAX];
};

/* Runs every check for a client at client_ip ("192.0.2.1", "2001:db8::1")
 * that said helo and MAIL FROM mail_from ("" for the null reverse-path).
 * Returns 0 and checks_r (free with auth_checks_free), or -1 with error_r
 * for a client_ip that is not an address. */
int auth_checks_run(struct dns_resolver *r, const struct auth_checks_settings *settings,
		    const char *client_ip, const char *helo, const char *mail_from,
		    struct auth_checks **checks_r, const char **error_r);
/* Points reply's spf_helo, spf_mail_from, iprev and dnsbl at data owned by
 * checks (valid until auth_checks_free; pack the reply before that). */
void auth_checks_fill(struct auth_checks *checks, Mailfleet__V1__VerifyReply *reply);
void auth_checks_free(struct auth_checks **checks);

#endif
