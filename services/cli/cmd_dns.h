/* dns: DNS lookups through the running dnsauth service (dns.v1.lookup). */
#ifndef CLI_CMD_DNS_H
#define CLI_CMD_DNS_H

/* mailfleet dns lookup NAME [TYPE] [-c PATH]: prints the answer as dnsauth
 * sees it, with the DNSSEC status.  Exit 0 for records, 1 for NXDOMAIN, no
 * data or a temporary error (the reason is printed), 2 for usage. */
int cli_cmd_dns(int argc, char **argv);

#endif
