#include "delivery_conncache.h"
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each field as "length:value;" so that no value can run into the next. */
static void field(struct mf_buf *b, const char *s)
{
	s = s != NULL ? s : "";
	mf_buf_appendf(b, "%zu:", strlen(s));
	mf_buf_append_str(b, s);
	mf_buf_append_str(b, ";");
}

char *delivery_conncache_key(const struct smtp_client_params *p)
{
	struct mf_buf b;
	char *key;

	mf_buf_init(&b, 0);
	field(&b, p->ip);
	field(&b, p->host);
	field(&b, p->ehlo_name);
	mf_buf_appendf(&b, "%u;%p;%d%d%d%d%d;%u;", p->port, (void *)p->tls, p->implicit_tls,
		       p->require_tls, p->auth_login, p->auth_user != NULL,
		       p->socks5_user != NULL, p->socks5_port);
	field(&b, p->auth_user);
	field(&b, p->auth_password);
	field(&b, p->socks5_ip);
	field(&b, p->socks5_user);
	field(&b, p->socks5_password);
	key = mf_xstrdup(mf_buf_cstr(&b));
	/* The buffer held the passwords too. */
	explicit_bzero(b.data, b.len);
	mf_buf_free(&b);
	return key;
}

void delivery_conncache_key_free(char **key)
{
	if (*key == NULL)
		return;
	/* The key can hold an AUTH password. */
	explicit_bzero(*key, strlen(*key));
	free(*key);
	*key = NULL;
}

static void remove_at(struct delivery_conncache *cache, size_t i, bool end)
{
	struct delivery_conncache_entry *e = &cache->entries[i];

	if (end)
		smtp_client_session_close(&e->session, true);
	delivery_conncache_key_free(&e->key);
	cache->entries[i] = cache->entries[cache->count - 1];
	memset(&cache->entries[cache->count - 1], 0, sizeof(cache->entries[0]));
	cache->count--;
}

void delivery_conncache_expire(struct delivery_conncache *cache, int64_t now_ms)
{
	for (size_t i = 0; i < cache->count;) {
		if (now_ms - cache->entries[i].idle_since_ms > DELIVERY_CONNCACHE_IDLE_MS)
			remove_at(cache, i, true);
		else
			i++;
	}
}

struct smtp_client_session *delivery_conncache_take(struct delivery_conncache *cache,
						    const char *key, int64_t now_ms)
{
	delivery_conncache_expire(cache, now_ms);
	for (size_t i = 0; i < cache->count; i++) {
		if (strcmp(cache->entries[i].key, key) == 0) {
			struct smtp_client_session *s = cache->entries[i].session;
			remove_at(cache, i, false);
			return s;
		}
	}
	return NULL;
}

void delivery_conncache_put(struct delivery_conncache *cache, const char *key,
			    struct smtp_client_session *session, int64_t now_ms)
{
	struct delivery_conncache_entry *e;

	if (session == NULL)
		return;
	if (cache->count == DELIVERY_CONNCACHE_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < cache->count; i++)
			if (cache->entries[i].idle_since_ms < cache->entries[oldest].idle_since_ms)
				oldest = i;
		remove_at(cache, oldest, true);
	}
	e = &cache->entries[cache->count++];
	e->key = mf_xstrdup(key);
	e->session = session;
	e->idle_since_ms = now_ms;
}

void delivery_conncache_clear(struct delivery_conncache *cache)
{
	while (cache->count > 0)
		remove_at(cache, cache->count - 1, true);
}
