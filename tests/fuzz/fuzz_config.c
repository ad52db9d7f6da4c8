/* Fuzzes the conf parser and serializer (an unchanged tree must come back
 * byte-identical), and both schemas, mailfleet.conf and domains.conf. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "domains.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const env[] = { NULL };
	struct mf_conf *conf = NULL;
	struct mf_config *config = NULL;
	struct mf_domains *domains = NULL;
	const char *err;

	if (mf_conf_parse_buf("/f/fuzz.conf", (const char *)data, size, &conf, &err) == 0) {
		char *out = mf_conf_serialize(conf);
		if (strlen(out) != size || memcmp(out, data, size) != 0)
			abort();  /* round trip broken */
		free(out);
		mf_conf_free(&conf);
	}
	if (mf_config_load_buf("/f/mailfleet.conf", (const char *)data, size, env, &config,
			       &err) == 0)
		mf_config_free(&config);
	if (mf_domains_load_buf("/f/domains.conf", (const char *)data, size, &domains, &err) == 0) {
		struct mf_domains_dest dest;
		for (size_t i = 0; i < domains->accounts_count; i++)
			for (size_t j = 0; j < domains->accounts[i].addresses_count; j++)
				mf_domains_resolve(domains, domains->accounts[i].addresses[j].localpart,
						   domains->accounts[i].addresses[j].domain, &dest);
		mf_domains_unref(&domains);
	}
	return 0;
}
