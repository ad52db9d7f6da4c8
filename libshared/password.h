/* password: slow password hashes (scrypt) for account and admin passwords,
 * and generation of random passwords.
 *
 * Hash format: $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt base64>$<key base64>
 * Passwords are compared as given; PRECIS normalisation is the caller's job. */
#ifndef MF_PASSWORD_H
#define MF_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define MF_PASSWORD_MAX 1024        /* longest password accepted for hashing */
#define MF_PASSWORD_HASH_MAX 256

/* Returns a newly allocated hash of password (caller frees), or NULL with
 * error_r when the password is too long or the KDF fails. */
char *mf_password_hash(const char *password, size_t len, const char **error_r);
/* Returns 1 when password matches hash, 0 when not, -1 with error_r for a
 * malformed hash. Compares in constant time. */
int mf_password_verify(const char *hash, const char *password, size_t len,
		       const char **error_r);
/* Returns a newly allocated random password of about 100 bits, in groups
 * of letters and digits that are easy to type (caller frees). */
char *mf_password_generate(void);

#endif
