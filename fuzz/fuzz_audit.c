/* fuzz_audit.c - the parsers of the audit tools' outside input: a
 * checkpoint line from the file outside the database
 * (sms_audit_checkpoint_parse: on success it writes back to the same line
 * and parses to the same checkpoint) and a report parameter from the REST
 * query or the command line (sms_report_param: "name=value"; never crashes,
 * leaves the parameters in range). The first byte picks which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sms/report.h"
#include "sms/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[4096];
	struct sms_audit_checkpoint cp, back;
	struct sms_report_params p;
	char out[400];
	char *eq;

	if (size < 1 || size > sizeof(line))
		return 0;
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	if (data[0] & 1) {
		sms_report_params_init(&p);
		if ((eq = strchr(line, '=')) == NULL)
			return 0;
		*eq = '\0';
		if (sms_report_param(&p, line, eq + 1) != 0)
			return 0;
		if (p.ndays > 31 || (p.month && (p.month < 1 || p.month > 12)) || p.package >= 65536 || p.channel >= 65536)
			__builtin_trap();
		for (size_t i = 0; i < p.ndays; i++)
			if (p.days[i] < 1 || p.days[i] > 31)
				__builtin_trap();
		return 0;
	}
	if (sms_audit_checkpoint_parse(line, &cp) != 0)
		return 0;
	if (cp.seq <= 0 || sms_audit_checkpoint_line(&cp, out, sizeof(out)) != 0 ||
	    sms_audit_checkpoint_parse(out, &back) != 0 || back.seq != cp.seq || back.at_ms != cp.at_ms ||
	    memcmp(back.hash, cp.hash, 32) != 0 || memcmp(back.sig, cp.sig, 64) != 0 ||
	    strcmp(back.key_id, cp.key_id) != 0)
		__builtin_trap();
	return 0;
}
