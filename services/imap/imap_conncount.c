/* imap_conncount: connections per IP and per account in this process
 * (IMAP_CONNS_PER_*), a small locked table keyed by "ip:", "pre:" and
 * "acct:" strings. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imap_session.h"

struct imap_conn_count {
	struct imap_conn_count *next;
	unsigned count;
	char key[];
};

struct imap_conn_counts {
	pthread_mutex_t lock;
	struct imap_conn_count *head;
};

struct imap_conn_counts *imap_conn_counts_create(void)
{
	struct imap_conn_counts *c = mf_xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void imap_conn_counts_free(struct imap_conn_counts **counts)
{
	struct imap_conn_count *e, *next;

	if (*counts == NULL)
		return;
	for (e = (*counts)->head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&(*counts)->lock);
	free(*counts);
	*counts = NULL;
}

bool imap_conn_counts_take(struct imap_conn_counts *counts, const char *key, unsigned max)
{
	struct imap_conn_count *e;
	bool ok = true;

	pthread_mutex_lock(&counts->lock);
	for (e = counts->head; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		size_t n = strlen(key);
		e = mf_xmalloc(sizeof(*e) + n + 1);
		memcpy(e->key, key, n + 1);
		e->count = 0;
		e->next = counts->head;
		counts->head = e;
	}
	if (e->count >= max)
		ok = false;
	else
		e->count++;
	pthread_mutex_unlock(&counts->lock);
	return ok;
}

void imap_conn_counts_release(struct imap_conn_counts *counts, const char *key)
{
	struct imap_conn_count **pp, *e;

	pthread_mutex_lock(&counts->lock);
	for (pp = &counts->head; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->key, key) != 0)
			continue;
		if (e->count > 0)
			e->count--;
		if (e->count == 0) {
			*pp = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&counts->lock);
}
