/* smtp_recipients: RCPT TO resolution with aliases and dedupe. */
#include "smtp_recipients.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

bool smtp_targets_add(struct smtp_targets *t, const char *account, const char *address,
		      const char *rcpt, unsigned notify, const char *orcpt)
{
	for (size_t i = 0; i < t->count; i++) {
		if (strcmp(t->items[i].account, account) == 0)
			return false;
	}
	if (t->count == t->alloc) {
		t->alloc = t->alloc == 0 ? 8 : t->alloc * 2;
		t->items = mf_xrealloc(t->items, t->alloc * sizeof(*t->items));
	}
	t->items[t->count++] = (struct smtp_target){
		.account = mf_xstrdup(account),
		.address = mf_xstrdup(address),
		.rcpt = mf_xstrdup(rcpt),
		.notify = notify,
		.orcpt = orcpt != NULL ? mf_xstrdup(orcpt) : NULL,
	};
	return true;
}

void smtp_targets_truncate(struct smtp_targets *t, size_t from)
{
	while (t->count > from) {
		struct smtp_target *x = &t->items[--t->count];
		free(x->account);
		free(x->address);
		free(x->rcpt);
		free(x->orcpt);
	}
}

void smtp_targets_clear(struct smtp_targets *t)
{
	smtp_targets_truncate(t, 0);
	free(t->items);
	memset(t, 0, sizeof(*t));
}

/* Whether the configured address a is the sender. */
static bool is_sender(const struct mf_domains_address *a, const struct mf_address *sender,
		      const struct mf_domain *dom)
{
	if (sender == NULL || strcmp(a->domain, sender->domain) != 0)
		return false;
	return mf_localpart_equal(a->localpart, sender->localpart,
				  dom != NULL && dom->localpart_case_sensitive);
}

/* Whether the sender reaches the same account as member address a (the
 * sender may use a subaddress of it, "mjl+list@"). */
static bool sender_is_member(const struct mf_domains *d, const struct mf_domains_address *a,
			     const struct mf_address *sender)
{
	struct mf_domains_dest sd;

	if (sender == NULL)
		return false;
	if (mf_domains_resolve(d, sender->localpart, sender->domain, &sd) !=
	    MF_DOMAINS_DEST_ACCOUNT)
		return false;
	return sd.matched != NULL && strcmp(sd.matched->address, a->address) == 0;
}

int smtp_recipients_resolve(const struct mf_domains *d, const char *hostname,
			    const struct mf_address *to, bool postmaster,
			    const struct mf_address *sender, unsigned notify, const char *orcpt,
			    struct smtp_targets *targets, size_t *added_r, const char **reply_r)
{
	struct mf_domains_dest dest;
	const char *localpart = to->localpart, *domain = to->domain;
	char *rcpt = NULL;
	int ret = -1;

	*added_r = 0;
	if (postmaster) {
		/* RFC 5321 4.5.1: postmaster without a domain. */
		localpart = "postmaster";
		domain = hostname;
		if (mf_domains_find_domain(d, hostname) == NULL && d->domains_count > 0)
			domain = d->domains[0].name;
	}
	rcpt = postmaster ? mf_xasprintf("%s@%s", localpart, domain) : mf_address_format(to);
	if (to->literal) {
		*reply_r = "550 5.7.1 relaying denied: address literals are not accepted here";
		goto out;
	}
	mf_domains_resolve(d, localpart, domain, &dest);
	if (dest.domain == NULL) {
		*reply_r = "550 5.7.1 relaying denied: the domain is not served here";
		goto out;
	}
	if (dest.domain->disabled) {
		*reply_r = "450 4.2.1 the domain is temporarily disabled, try again later";
		goto out;
	}
	switch (dest.kind) {
	case MF_DOMAINS_DEST_NONE:
		*reply_r = "550 5.1.1 no such user here";
		goto out;
	case MF_DOMAINS_DEST_ACCOUNT:
		if (smtp_targets_add(targets, dest.account->name, dest.matched->address, rcpt,
				     notify, orcpt))
			(*added_r)++;
		break;
	case MF_DOMAINS_DEST_ALIAS: {
		const struct mf_alias *al = dest.alias;
		bool member = false;
		for (size_t i = 0; i < al->members_count && !member; i++)
			member = sender_is_member(d, &al->members[i], sender) ||
				 is_sender(&al->members[i], sender, dest.domain);
		if (!al->post_public && !member) {
			*reply_r = "550 5.7.1 only members may send to this list";
			goto out;
		}
		for (size_t i = 0; i < al->members_count; i++) {
			const struct mf_domains_address *m = &al->members[i];
			struct mf_domains_dest md;
			if (sender_is_member(d, m, sender) || is_sender(m, sender, dest.domain))
				continue;
			if (mf_domains_resolve(d, m->localpart, m->domain, &md) !=
			    MF_DOMAINS_DEST_ACCOUNT || md.domain == NULL || md.domain->disabled)
				continue;
			if (smtp_targets_add(targets, md.account->name, m->address, rcpt, notify,
					     orcpt))
				(*added_r)++;
		}
		break;
	}
	}
	ret = 0;
out:
	free(rcpt);
	return ret;
}
