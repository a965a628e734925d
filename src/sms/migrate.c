/*
 * migrate.c - a store into another, compared table by table (migrate.h).
 */
#include <inttypes.h>
#include <openssl/crypto.h>
#include "lib/util.h"
#include "sms/migrate.h"

int sms_migrate(struct sms_store *from, struct sms_store *to, unsigned flags, FILE *out, bool *equal, bool *read_back,
	char *why, size_t why_cap)
{
	struct sms_copy_table got[SMS_COPY_TABLES], put[SMS_COPY_TABLES];
	uint64_t t0 = now_mono_ms();
	int64_t total = 0;
	int r, bad = 0;

	*equal = *read_back = false;
	if ((r = sms_store_copy(from, to, flags, got, why, why_cap)) != 0)
		return r;
	if ((r = sms_store_digest(to, put)) != 0) {
		*read_back = true;
		return r;
	}
	fprintf(out, "%-18s %12s  %s\n", "table", "rows", "target");
	for (size_t i = 0; i < SMS_COPY_TABLES; i++) {
		bool same = got[i].rows == put[i].rows && CRYPTO_memcmp(got[i].digest, put[i].digest, 32) == 0;

		fprintf(out, "%-18s %12" PRId64 "  %s\n", got[i].name, got[i].rows, same ? "equal" : "DIFFERS");
		total += got[i].rows;
		bad += !same;
	}
	fprintf(out, "%" PRId64 " rows in %d tables copied in %.1f s (%s -> %s); %s\n", total, SMS_COPY_TABLES,
		(double)(now_mono_ms() - t0) / 1000.0, sms_store_backend(from), sms_store_backend(to),
		bad ? "SOME TABLES DIFFER" : "every table equal");
	*equal = bad == 0;
	return 0;
}
