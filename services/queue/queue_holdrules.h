/* queue_holdrules: rules that mark queued messages as held (by account,
 * sender domain, recipient domain; a rule with every field empty holds
 * everything).  New messages are checked at add, existing ones when a rule
 * is added.  Callers hold the database lock (queue_db.h). */
#ifndef QUEUE_HOLDRULES_H
#define QUEUE_HOLDRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue_db.h"

#define QUEUE_HOLDRULES_MAX 1000

struct queue_holdrule {
	int64_t id;
	char *account;       /* "" matches every account */
	char *from_domain;
	char *to_domain;
};

/* True when rule matches a message from account/from_domain to to_domain
 * (domains compared without regard to case). */
bool queue_holdrule_matches(const struct queue_holdrule *rule, const char *account,
			    const char *from_domain, const char *to_domain);

/* All rules, in id order.  Free with queue_holdrules_free. */
int queue_holdrules_list(struct queue_db *db, struct queue_holdrule **rules_r,
			 size_t *count_r, const char **error_r);
void queue_holdrules_free(struct queue_holdrule **rules, size_t count);
/* Adds rule (sets rule->id) and marks matching queued messages held;
 * *held_r is how many.  Returns 0 or -1. */
int queue_holdrules_add(struct queue_db *db, struct queue_holdrule *rule, unsigned *held_r,
			const char **error_r);
/* Returns 1 removed, 0 no such rule, -1 error.  Held messages stay held. */
int queue_holdrules_remove(struct queue_db *db, int64_t id, const char **error_r);
/* True (1) when any rule matches; 0 none; -1 error. */
int queue_holdrules_check(struct queue_db *db, const char *account, const char *from_domain,
			  const char *to_domain, const char **error_r);

#endif
