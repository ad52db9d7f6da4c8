/* mailfleet queue ... / mailfleet suppression ...: see cmd_queue.h. */
#include "cmd_queue.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli_bus.h"
#include "queue.pb-c.h"

#define CLI_QUEUE_TIMEOUT_MS 30000
#define CLI_QUEUE_IDS_MAX 1000

static const char queue_usage[] =
	"usage: mailfleet queue list [FILTERS] [--after ID] [--limit N]\n"
	"       mailfleet queue hold|release|fail|drop FILTERS\n"
	"       mailfleet queue reschedule FILTERS (--now | --in SECONDS | --at UNIX-SECONDS)\n"
	"       mailfleet queue transport FILTERS NAME     (\"\": routes; direct, local, or a\n"
	"                                                  transport of domains.conf)\n"
	"       mailfleet queue requiretls FILTERS yes|no\n"
	"       mailfleet queue holdrule list\n"
	"       mailfleet queue holdrule add [--account A] [--from-domain D] [--to-domain D]\n"
	"       mailfleet queue holdrule remove ID\n"
	"FILTERS: --id ID (repeatable) --account A --from-domain D --to-domain D\n"
	"         --held yes|no --due-before UNIX-SECONDS --due-after UNIX-SECONDS\n"
	"         --transport T, or --all to select every message\n"
	"Every command also takes -c mailfleet.conf.\n";

static const char suppression_usage[] =
	"usage: mailfleet suppression list [--account A] [-c mailfleet.conf]\n"
	"       mailfleet suppression add ACCOUNT ADDRESS [REASON] [-c mailfleet.conf]\n"
	"       mailfleet suppression remove ACCOUNT ADDRESS [-c mailfleet.conf]\n";

struct cli_args {
	const char *config;
	Mailfleet__V1__QueueFilter filter;
	int64_t ids[CLI_QUEUE_IDS_MAX];
	bool any_filter, all;
	int64_t after_id;
	uint32_t limit;
	bool now;
	long long in_secs, at_secs;
	bool in_set, at_set;
	const char *account, *from_domain, *to_domain;
	char **rest;
	int nrest;
};

static int parse_args(int argc, char **argv, struct cli_args *a)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "account", required_argument, NULL, 'a' },
		{ "from-domain", required_argument, NULL, 'f' },
		{ "to-domain", required_argument, NULL, 't' },
		{ "held", required_argument, NULL, 'H' },
		{ "due-before", required_argument, NULL, 'B' },
		{ "due-after", required_argument, NULL, 'A' },
		{ "transport", required_argument, NULL, 'T' },
		{ "all", no_argument, NULL, 'L' },
		{ "after", required_argument, NULL, 'x' },
		{ "limit", required_argument, NULL, 'l' },
		{ "now", no_argument, NULL, 'n' },
		{ "in", required_argument, NULL, 'I' },
		{ "at", required_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	mailfleet__v1__queue_filter__init(&a->filter);
	a->filter.ids = a->ids;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'i':
			if (a->filter.n_ids == CLI_QUEUE_IDS_MAX) {
				fprintf(stderr, "mailfleet: too many --id (max %d)\n", CLI_QUEUE_IDS_MAX);
				return -1;
			}
			a->ids[a->filter.n_ids++] = atoll(optarg);
			a->any_filter = true;
			break;
		case 'a': a->filter.account = optarg; a->account = optarg; a->any_filter = true; break;
		case 'f': a->filter.from_domain = optarg; a->from_domain = optarg; a->any_filter = true; break;
		case 't': a->filter.to_domain = optarg; a->to_domain = optarg; a->any_filter = true; break;
		case 'H':
			if (strcmp(optarg, "yes") == 0)
				a->filter.held = MAILFLEET__V1__QUEUE_FILTER__HELD__HELD;
			else if (strcmp(optarg, "no") == 0)
				a->filter.held = MAILFLEET__V1__QUEUE_FILTER__HELD__NOT_HELD;
			else {
				fprintf(stderr, "mailfleet: --held yes or no\n");
				return -1;
			}
			a->any_filter = true;
			break;
		case 'B': a->filter.next_attempt_before_unix_ms = atoll(optarg) * 1000; a->any_filter = true; break;
		case 'A': a->filter.next_attempt_after_unix_ms = atoll(optarg) * 1000; a->any_filter = true; break;
		case 'T': a->filter.transport = optarg; a->filter.match_transport = true; a->any_filter = true; break;
		case 'L': a->all = true; break;
		case 'x': a->after_id = atoll(optarg); break;
		case 'l': a->limit = (uint32_t)atol(optarg); break;
		case 'n': a->now = true; break;
		case 'I': a->in_secs = atoll(optarg); a->in_set = true; break;
		case 'V': a->at_secs = atoll(optarg); a->at_set = true; break;
		default: return -1;
		}
	}
	a->rest = argv + optind;
	a->nrest = argc - optind;
	return 0;
}

/* Sends one request and returns its reply body (caller frees the reply). */
static int call(const char *config_path, const char *subject, const ProtobufCMessage *m,
		struct mf_bus_reply *reply)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = mf_xmalloc(len > 0 ? len : 1);
	int ret = -1;

	memset(reply, 0, sizeof(*reply));
	protobuf_c_message_pack(m, buf);
	if (cli_bus_open(config_path, &config, &bus) < 0)
		goto out;
	if (mf_bus_request(bus, subject, "cli", buf, len, CLI_QUEUE_TIMEOUT_MS, reply) < 0)
		fprintf(stderr, "mailfleet: %s: %s (%s)\n", subject, reply->message,
			mf_bus_status_name(reply->status));
	else
		ret = 0;
	cli_bus_close(&config, &bus);
out:
	free(buf);
	return ret;
}

static void print_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(s, stdout);
}

static int cmd_list(struct cli_args *a)
{
	Mailfleet__V1__QueueListRequest req = MAILFLEET__V1__QUEUE_LIST_REQUEST__INIT;
	Mailfleet__V1__QueueListReply *rep;
	struct mf_bus_reply reply;

	req.filter = &a->filter;
	req.after_id = a->after_id;
	req.limit = a->limit;
	if (call(a->config, "queue.v1.admin.list", &req.base, &reply) < 0) {
		mf_bus_reply_free(&reply);
		return 1;
	}
	rep = mailfleet__v1__queue_list_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (rep == NULL) {
		fprintf(stderr, "mailfleet: malformed reply\n");
		return 1;
	}
	for (size_t i = 0; i < rep->n_messages; i++) {
		const Mailfleet__V1__QueueMessage *m = rep->messages[i];
		printf("%lld base=%lld account=%s from=<%s> to=<%s> attempts=%u/%u next=",
		       (long long)m->id, (long long)m->base_id, m->account, m->mail_from,
		       m->recipient, m->attempts, m->max_attempts);
		print_time(m->next_attempt_unix_ms);
		printf("%s%s transport=%s size=%llu\n", m->held ? " held" : "",
		       m->leased ? " in-delivery" : "", *m->transport != '\0' ? m->transport : "default",
		       (unsigned long long)m->size);
		for (size_t j = 0; j < m->n_results; j++) {
			const Mailfleet__V1__QueueAttempt *at = m->results[j];
			printf("    attempt %zu ", j + 1);
			print_time(at->at_unix_ms);
			printf(" %u %s host=%s%s%s duration=%llums: ", at->code, at->enhanced_code,
			       at->host, *at->tls != '\0' ? " tls=" : "", at->tls,
			       (unsigned long long)at->duration_ms);
			for (const char *p = at->text; *p != '\0'; p++)
				putchar(*p == '\n' ? '|' : *p);
			putchar('\n');
		}
	}
	if (rep->next_after_id != 0)
		printf("more: --after %lld\n", (long long)rep->next_after_id);
	mailfleet__v1__queue_list_reply__free_unpacked(rep, NULL);
	return 0;
}

static int cmd_op(struct cli_args *a, const char *op)
{
	Mailfleet__V1__QueueOpRequest req = MAILFLEET__V1__QUEUE_OP_REQUEST__INIT;
	Mailfleet__V1__QueueOpReply *rep;
	struct mf_bus_reply reply;
	char subject[64];
	int nargs = 0;

	if (!a->any_filter && !a->all) {
		fprintf(stderr, "mailfleet queue %s: give filters, or --all for every message\n", op);
		return 2;
	}
	req.filter = &a->filter;
	if (strcmp(op, "reschedule") == 0) {
		if (a->now)
			req.add_ms = 0;
		else if (a->in_set)
			req.add_ms = a->in_secs * 1000;
		else if (a->at_set)
			req.next_attempt_unix_ms = a->at_secs * 1000;
		else {
			fprintf(stderr, "mailfleet queue reschedule: --now, --in or --at\n");
			return 2;
		}
	} else if (strcmp(op, "transport") == 0) {
		if (a->nrest != 1) {
			fprintf(stderr, "mailfleet queue transport: give the transport\n");
			return 2;
		}
		req.transport = a->rest[0];
		nargs = 1;
	} else if (strcmp(op, "requiretls") == 0) {
		if (a->nrest != 1 || (strcmp(a->rest[0], "yes") != 0 && strcmp(a->rest[0], "no") != 0)) {
			fprintf(stderr, "mailfleet queue requiretls: yes or no\n");
			return 2;
		}
		req.requiretls = strcmp(a->rest[0], "yes") == 0;
		nargs = 1;
	}
	if (a->nrest != nargs) {
		fputs(queue_usage, stderr);
		return 2;
	}
	snprintf(subject, sizeof(subject), "queue.v1.admin.%s", op);
	if (call(a->config, subject, &req.base, &reply) < 0) {
		mf_bus_reply_free(&reply);
		return 1;
	}
	rep = mailfleet__v1__queue_op_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (rep == NULL) {
		fprintf(stderr, "mailfleet: malformed reply\n");
		return 1;
	}
	printf("%u message%s changed\n", rep->count, rep->count == 1 ? "" : "s");
	mailfleet__v1__queue_op_reply__free_unpacked(rep, NULL);
	return 0;
}

static int cmd_holdrule(struct cli_args *a)
{
	struct mf_bus_reply reply;
	const char *sub = a->nrest > 0 ? a->rest[0] : "";

	if (strcmp(sub, "list") == 0 && a->nrest == 1) {
		Mailfleet__V1__HoldRuleListRequest req = MAILFLEET__V1__HOLD_RULE_LIST_REQUEST__INIT;
		Mailfleet__V1__HoldRuleListReply *rep;
		if (call(a->config, "queue.v1.admin.holdrule.list", &req.base, &reply) < 0)
			goto fail;
		rep = mailfleet__v1__hold_rule_list_reply__unpack(NULL, reply.body_len, reply.body);
		mf_bus_reply_free(&reply);
		if (rep == NULL)
			return 1;
		for (size_t i = 0; i < rep->n_rules; i++)
			printf("%lld account=%s from-domain=%s to-domain=%s\n",
			       (long long)rep->rules[i]->id,
			       *rep->rules[i]->account != '\0' ? rep->rules[i]->account : "*",
			       *rep->rules[i]->from_domain != '\0' ? rep->rules[i]->from_domain : "*",
			       *rep->rules[i]->to_domain != '\0' ? rep->rules[i]->to_domain : "*");
		mailfleet__v1__hold_rule_list_reply__free_unpacked(rep, NULL);
		return 0;
	}
	if (strcmp(sub, "add") == 0 && a->nrest == 1) {
		Mailfleet__V1__HoldRuleAddRequest req = MAILFLEET__V1__HOLD_RULE_ADD_REQUEST__INIT;
		Mailfleet__V1__HoldRule rule = MAILFLEET__V1__HOLD_RULE__INIT;
		Mailfleet__V1__HoldRuleAddReply *rep;
		rule.account = (char *)(a->account != NULL ? a->account : "");
		rule.from_domain = (char *)(a->from_domain != NULL ? a->from_domain : "");
		rule.to_domain = (char *)(a->to_domain != NULL ? a->to_domain : "");
		req.rule = &rule;
		if (call(a->config, "queue.v1.admin.holdrule.add", &req.base, &reply) < 0)
			goto fail;
		rep = mailfleet__v1__hold_rule_add_reply__unpack(NULL, reply.body_len, reply.body);
		mf_bus_reply_free(&reply);
		if (rep == NULL || rep->rule == NULL)
			return 1;
		printf("hold rule %lld added; %u queued message%s now held\n",
		       (long long)rep->rule->id, rep->held, rep->held == 1 ? "" : "s");
		mailfleet__v1__hold_rule_add_reply__free_unpacked(rep, NULL);
		return 0;
	}
	if (strcmp(sub, "remove") == 0 && a->nrest == 2) {
		Mailfleet__V1__HoldRuleRemoveRequest req = MAILFLEET__V1__HOLD_RULE_REMOVE_REQUEST__INIT;
		req.id = atoll(a->rest[1]);
		if (call(a->config, "queue.v1.admin.holdrule.remove", &req.base, &reply) < 0)
			goto fail;
		mf_bus_reply_free(&reply);
		printf("hold rule %lld removed (held messages stay held: release them)\n",
		       (long long)req.id);
		return 0;
	}
	fputs(queue_usage, stderr);
	return 2;
fail:
	mf_bus_reply_free(&reply);
	return 1;
}

int cli_cmd_queue(int argc, char **argv)
{
	static const char *const ops[] = {
		"hold", "release", "fail", "drop", "reschedule", "transport", "requiretls",
	};
	struct cli_args a;
	const char *sub;

	if (argc < 2) {
		fputs(queue_usage, stderr);
		return 2;
	}
	sub = argv[1];
	if (parse_args(argc - 1, argv + 1, &a) < 0) {
		fputs(queue_usage, stderr);
		return 2;
	}
	if (strcmp(sub, "list") == 0) {
		if (a.nrest != 0) {
			fputs(queue_usage, stderr);
			return 2;
		}
		return cmd_list(&a);
	}
	if (strcmp(sub, "holdrule") == 0)
		return cmd_holdrule(&a);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(sub, ops[i]) == 0)
			return cmd_op(&a, ops[i]);
	fputs(queue_usage, stderr);
	return 2;
}

int cli_cmd_suppression(int argc, char **argv)
{
	struct cli_args a;
	struct mf_bus_reply reply;
	const char *sub;

	if (argc < 2 || parse_args(argc - 1, argv + 1, &a) < 0) {
		fputs(suppression_usage, stderr);
		return 2;
	}
	sub = argv[1];
	if (strcmp(sub, "list") == 0 && a.nrest == 0) {
		Mailfleet__V1__SuppressionListRequest req = MAILFLEET__V1__SUPPRESSION_LIST_REQUEST__INIT;
		Mailfleet__V1__SuppressionListReply *rep;
		req.account = (char *)(a.account != NULL ? a.account : "");
		if (call(a.config, "queue.v1.admin.suppression.list", &req.base, &reply) < 0)
			goto fail;
		rep = mailfleet__v1__suppression_list_reply__unpack(NULL, reply.body_len, reply.body);
		mf_bus_reply_free(&reply);
		if (rep == NULL)
			return 1;
		for (size_t i = 0; i < rep->n_suppressions; i++) {
			const Mailfleet__V1__Suppression *s = rep->suppressions[i];
			printf("account=%s address=%s %s added=", s->account, s->address,
			       s->manual ? "manual" : "automatic");
			print_time(s->created_unix_ms);
			printf(" reason=\"");
			for (const char *p = s->reason; *p != '\0'; p++)
				putchar(*p == '\n' ? '|' : *p);
			printf("\"\n");
		}
		mailfleet__v1__suppression_list_reply__free_unpacked(rep, NULL);
		return 0;
	}
	if (strcmp(sub, "add") == 0 && (a.nrest == 2 || a.nrest == 3)) {
		Mailfleet__V1__SuppressionAddRequest req = MAILFLEET__V1__SUPPRESSION_ADD_REQUEST__INIT;
		Mailfleet__V1__Suppression s = MAILFLEET__V1__SUPPRESSION__INIT;
		s.account = a.rest[0];
		s.address = a.rest[1];
		s.reason = a.nrest == 3 ? a.rest[2] : "";
		s.manual = true;
		req.suppression = &s;
		if (call(a.config, "queue.v1.admin.suppression.add", &req.base, &reply) < 0)
			goto fail;
		mf_bus_reply_free(&reply);
		printf("%s added to the suppression list of %s\n", s.address, s.account);
		return 0;
	}
	if (strcmp(sub, "remove") == 0 && a.nrest == 2) {
		Mailfleet__V1__SuppressionRemoveRequest req =
			MAILFLEET__V1__SUPPRESSION_REMOVE_REQUEST__INIT;
		Mailfleet__V1__SuppressionRemoveReply *rep;
		req.account = a.rest[0];
		req.address = a.rest[1];
		if (call(a.config, "queue.v1.admin.suppression.remove", &req.base, &reply) < 0)
			goto fail;
		rep = mailfleet__v1__suppression_remove_reply__unpack(NULL, reply.body_len, reply.body);
		mf_bus_reply_free(&reply);
		if (rep == NULL)
			return 1;
		printf(rep->removed ? "%s removed from the suppression list of %s\n" :
		       "%s was not on the suppression list of %s\n", req.address, req.account);
		mailfleet__v1__suppression_remove_reply__free_unpacked(rep, NULL);
		return 0;
	}
	fputs(suppression_usage, stderr);
	return 2;
fail:
	mf_bus_reply_free(&reply);
	return 1;
}
