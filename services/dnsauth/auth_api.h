/* auth_api: the auth.v1 endpoints of dnsauth (proto/auth.proto) and the
 * verification they assemble.
 *
 *   auth.v1.verify  SPF (HELO and MAIL FROM), iprev, DNSBL, DKIM per
 *                   signature, DMARC, and a ready Authentication-Results
 *                   header field (RFC 8601) with the host name as
 *                   authserv-id.  A DMARC evaluation with a policy record
 *                   is published on events.v1.dmarc (proto/events.proto).
 *   auth.v1.sign    DKIM-Signature header fields for a message, made with
 *                   the selectors domains.conf lists under "sign" for the
 *                   From domain.  The private keys are read only here.
 *
 * The functions below the start function work without NATS, for tests. */
#ifndef DNSAUTH_AUTH_API_H
#define DNSAUTH_AUTH_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "dkim.h"
#include "auth_checks.h"
#include "dmarc.h"
#include "resolver.h"
#include "spf.h"

#define AUTH_API_VERIFY_SUBJECT "auth.v1.verify"
#define AUTH_API_SIGN_SUBJECT "auth.v1.sign"
#define AUTH_API_DMARC_EVENT_SUBJECT "events.v1.dmarc"

/* Limits on what other services send (they relay SMTP clients' input). */
#define AUTH_HELO_MAX 255
#define AUTH_MAIL_FROM_MAX 512
#define AUTH_RECIPIENTS_MAX 1000
#define AUTH_RECIPIENT_MAX 512
#define AUTH_IP_MAX 64
/* Messages read for DKIM/DMARC when the config gives no limit. */
#define AUTH_MESSAGE_MAX_DEFAULT (64 * 1024 * 1024)
/* Authentication-Results: a value longer than this is cut (and quoted). */
#define AUTH_AR_VALUE_MAX 256

struct mf_service;
struct mf_blob_store;
struct mf_metric;

struct auth_api {
	struct dns_resolver *r;
	struct mf_blob_store *blobs;  /* NULL: only inline messages */
	struct mf_bus *bus;           /* NULL: no events */
	const char *hostname;         /* authserv-id */
	struct dkim_verify_settings dkim;
	char *const *dnsbl;           /* zones checked for the client IP */
	size_t dnsbl_count;
	size_t message_max;           /* 0: AUTH_MESSAGE_MAX_DEFAULT */
	struct mf_metric *verify_total;  /* NULL in tests */
	struct mf_metric *sign_total;
	struct mf_metric *dkim_total;
	struct mf_metric *dmarc_total;
};

/* Starts auth.v1.verify and auth.v1.sign (queue group "dnsauth") with
 * resolver r, the service's config (hostname, dnsauth block, blob
 * directory, message size limit) and metrics.  Once per process; r must
 * outlive the bus.  Returns 0, or -1 with error_r. */
int dnsauth_auth_api_start(struct mf_service *svc, struct dns_resolver *r, const char **error_r);

/* What one SMTP transaction gives verification. */
struct auth_verify_input {
	const char *client_ip;   /* NULL / "": unknown (no SPF, iprev, DNSBL) */
	const char *helo;
	const char *mail_from;   /* "" for the null reverse-path */
	const char *msg;         /* the message, header and body */
	size_t len;
};

struct auth_verdict {
	bool have_ip;
	/* SPF, iprev and DNSBL (auth_checks.h); NULL without a client
	 * address. */
	struct auth_checks *checks;
	struct dkim_result *dkim;
	size_t dkim_count;
	struct dmarc_message_info info;
	struct dmarc_evaluation dmarc;
	char *authentication_results;  /* the whole field with CRLF */
};

/* Runs every check.  Always fills v (free with auth_verdict_clear). */
void auth_verify(const struct auth_api *api, const struct auth_verify_input *in,
		 struct auth_verdict *v);
void auth_verdict_clear(struct auth_verdict *v);

/* The Authentication-Results field for v (RFC 8601), folded, ending in
 * CRLF; values from the client are quoted.  Caller frees. */
char *auth_results_header(const char *authserv_id, const struct auth_verify_input *in,
			  const struct auth_verdict *v);

/* Handles one VerifyRequest / SignRequest body (the bus handlers call
 * these; tests call them directly).  Verify: PERMANENT for a malformed or
 * over-limit request or a missing blob, TEMPORARY when the blob cannot be
 * read, else OK with a VerifyReply.  Sign: PERMANENT for a malformed
 * request or a domain without selectors to sign with, TEMPORARY when the
 * message or a key cannot be read now, else OK with a SignReply. */
void auth_api_verify(const struct auth_api *api, const char *cid, const uint8_t *body,
		     size_t len, struct mf_bus_response *resp);
void auth_api_sign(const struct auth_api *api, const char *cid, const uint8_t *body, size_t len,
		   struct mf_bus_response *resp);

/* Signs msg for domain (A-labels) with the domain's sign list in the
 * current domains.conf snapshot.  Returns 0 and headers_r (the fields,
 * concatenated, caller frees) and selectors_r (caller frees each and the
 * array; count in selectors_count_r), or -1 with error_r and
 * *temporary_r telling whether trying again may help. */
int auth_sign(const char *domain, const char *msg, size_t len, int64_t now, char **headers_r,
	      char ***selectors_r, size_t *selectors_count_r, bool *temporary_r,
	      const char **error_r);

#endif
