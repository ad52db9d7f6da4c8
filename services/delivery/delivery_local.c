#include "delivery_local.h"
#include "buf.h"
#include "log.h"

#include "store.pb-c.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PKG "delivery"

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);
	return len >= sl && strncasecmp(s + len - sl, suffix, sl) == 0;
}

enum delivery_sim delivery_local_simulation(const char *address, unsigned *code_r,
					    const char **enhanced_r)
{
	const char *at = strrchr(address, '@');
	size_t len = at != NULL ? (size_t)(at - address) : strlen(address);

	if (ends_with(address, len, "temperror")) {
		*code_r = 451;
		*enhanced_r = "4.0.0";
		return DELIVERY_SIM_RESULT;
	}
	if (ends_with(address, len, "permerror")) {
		*code_r = 550;
		*enhanced_r = "5.0.0";
		return DELIVERY_SIM_RESULT;
	}
	if (ends_with(address, len, "timeout"))
		return DELIVERY_SIM_TIMEOUT;
	if (len >= 4 && (address[len - 4] == 'x' || address[len - 4] == 'X') &&
	    isdigit((unsigned char)address[len - 3]) && isdigit((unsigned char)address[len - 2]) &&
	    isdigit((unsigned char)address[len - 1])) {
		unsigned code = (unsigned)(address[len - 3] - '0') * 100 +
				(unsigned)(address[len - 2] - '0') * 10 +
				(unsigned)(address[len - 1] - '0');
		if (code >= 200 && code <= 599) {
			*code_r = code;
			*enhanced_r = code >= 500 ? "5.0.0" : code >= 400 ? "4.0.0" : "2.0.0";
			return DELIVERY_SIM_RESULT;
		}
	}
	return DELIVERY_SIM_NONE;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void delivery_local_store(struct mf_bus *bus, const struct delivery_store_msg *m,
			  struct smtp_client_rcpt *rcpts, const size_t *idx,
			  const char *const *store_addresses, size_t n)
{
	Mailfleet__V1__DeliverRequest req = MAILFLEET__V1__DELIVER_REQUEST__INIT;
	Mailfleet__V1__DeliverRecipient *dr = mf_xcalloc(n + 1, sizeof(*dr));
	Mailfleet__V1__DeliverRecipient **drp = mf_xcalloc(n + 1, sizeof(*drp));
	Mailfleet__V1__DeliverReply *rep = NULL;
	struct mf_bus_reply reply;
	char *subject = mf_xasprintf("store.v1.deliver.%s", m->account);
	size_t len;
	uint8_t *buf;

	req.account = (char *)m->account;
	req.blob_key = (char *)m->blob_key;
	req.message_id = (char *)m->message_id;
	req.mail_from = (char *)m->mail_from;
	req.received_unix_ms = now_ms();
	req.requiretls = m->requiretls;
	req.smtputf8 = m->smtputf8;
	for (size_t i = 0; i < n; i++) {
		mailfleet__v1__deliver_recipient__init(&dr[i]);
		dr[i].address = (char *)store_addresses[i];
		drp[i] = &dr[i];
	}
	req.recipients = drp;
	req.n_recipients = n;
	len = mailfleet__v1__deliver_request__get_packed_size(&req);
	buf = mf_xmalloc(len > 0 ? len : 1);
	mailfleet__v1__deliver_request__pack(&req, buf);

	if (mf_bus_request(bus, subject, m->cid, buf, len, DELIVERY_STORE_TIMEOUT_MS, &reply) < 0) {
		/* The whole request failed: temporary unless the store said
		 * it will never work. */
		bool perm = reply.status == MF_BUS_PERMANENT;
		char *t = mf_xasprintf("local delivery: %s", reply.message);
		for (size_t i = 0; i < n; i++)
			smtp_client_rcpt_set(&rcpts[idx[i]], false, perm, perm ? 550 : 451,
					     perm ? "5.0.0" : "4.0.0", t);
		free(t);
		goto out;
	}
	rep = mailfleet__v1__deliver_reply__unpack(NULL, reply.body_len, reply.body);
	if (rep == NULL || rep->n_results != n) {
		for (size_t i = 0; i < n; i++)
			smtp_client_rcpt_set(&rcpts[idx[i]], false, false, 451, "4.0.0",
					     "local delivery: malformed reply from the store");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		Mailfleet__V1__DeliverResult *r = rep->results[i];
		int code = r->status != NULL ? (int)r->status->code : 1;
		const char *msg = r->status != NULL ? r->status->message : "";
		unsigned smtp = r->smtp_code != 0 && r->smtp_code <= 599 ? r->smtp_code :
				code == 0 ? 250 : code == 2 ? 550 : 451;
		char *t = mf_xasprintf("%s", code == 0 ? "delivered to local mailbox" : msg);
		smtp_client_rcpt_set(&rcpts[idx[i]], code == 0, code == 2, smtp,
				     *r->enhanced_code != '\0' ? r->enhanced_code :
				     code == 0 ? "2.0.0" : code == 2 ? "5.0.0" : "4.0.0", t);
		free(t);
	}
out:
	if (rep != NULL)
		mailfleet__v1__deliver_reply__free_unpacked(rep, NULL);
	mf_bus_reply_free(&reply);
	free(buf);
	free(subject);
	free(dr);
	free(drp);
}
