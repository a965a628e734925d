/*
 * scrambler_stats.c - the scrambler's counters: the snapshot, the text
 * summary (stderr, SIGUSR1) and the JSON file (--stats-json), with the SCS
 * channels' and the MUX's counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "lib/util.h"
#include "scrambler/scs.h"
#include "scrambler/scrambler_int.h"

#define MOD "scrambler"

void scrambler_stats(const struct scrambler *s, struct scrambler_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	*out = s->stats;
	out->stream_time_ms = s->st / TICKS_PER_MS;
	out->nstreams = s->nstreams;
	for (size_t i = 0; i < s->nstreams; i++)
		out->streams[i] = s->es[i].st;
	out->ncas = s->cfg.ncas;
	for (size_t c = 0; c < s->cfg.ncas; c++) {
		out->cas[c].super_cas_id = s->cfg.cas[c].super_cas_id;
		if (!s->cfg.ecm_ops)
			scr_scs_cas_stats(s->ops_ctx, c, &out->cas[c]);
		out->cas[c].super_cas_id = s->cfg.cas[c].super_cas_id;
	}
	if (s->mux) {
		out->has_mux = true;
		mux_stats(s->mux, &out->mux);
	}
}

uint16_t scrambler_mux_port(const struct scrambler *s)
{
	return s && s->mux ? mux_port(s->mux) : 0;
}

void scrambler_stats_print(const struct scrambler *s, FILE *f)
{
	struct scrambler_stats *st = malloc(sizeof(*st));

	if (!st)
		return;
	scrambler_stats(s, st);
	fprintf(f, "scrambler: %llu packets in, %llu out, %llu scrambled, stream time %llu ms\n",
		(unsigned long long)st->pkts_in, (unsigned long long)st->pkts_out,
		(unsigned long long)st->pkts_scrambled, (unsigned long long)st->stream_time_ms);
	fprintf(f, "  inserted: %llu ECM, %llu EMM, %llu CAT packets; %llu nulls replaced of %llu, "
		"%llu extra packets, %llu dropped\n",
		(unsigned long long)st->ecm_pkts, (unsigned long long)st->emm_pkts,
		(unsigned long long)st->cat_pkts, (unsigned long long)st->nulls_replaced,
		(unsigned long long)st->nulls_in, (unsigned long long)st->extra_pkts,
		(unsigned long long)st->insert_dropped);
	fprintf(f, "  CP changes %llu, CP failures %llu; for want of a key: %llu packets withheld, "
		"%llu left clear; %llu clear by --clear-start\n",
		(unsigned long long)st->cp_changes, (unsigned long long)st->cp_failures,
		(unsigned long long)st->pkts_withheld, (unsigned long long)st->clear_pkts_failure,
		(unsigned long long)st->clear_pkts_start);
	fprintf(f, "  input errors %llu, resyncs %llu, dropped bytes %llu, already scrambled %llu, "
		"PSI errors %llu, PID conflicts %llu\n",
		(unsigned long long)st->input_errors, (unsigned long long)st->input_resyncs,
		(unsigned long long)st->input_dropped_bytes, (unsigned long long)st->already_scrambled,
		(unsigned long long)st->psi_errors, (unsigned long long)st->pid_conflicts);
	for (size_t i = 0; i < st->nstreams; i++) {
		const struct scr_stream_stats *e = &st->streams[i];

		fprintf(f, "  service %u CAS %08x ECM PID 0x%04x stream %u: CW_provision %llu, "
			"ECM_response %llu, timeouts %llu, errors %llu, ECM packets %llu\n",
			e->service_id, e->super_cas_id, e->ecm_pid, e->stream_id,
			(unsigned long long)e->cw_provision_sent, (unsigned long long)e->ecm_response_received,
			(unsigned long long)e->timeouts, (unsigned long long)e->errors,
			(unsigned long long)e->ecm_pkts_out);
		if (!e->open || e->open_failures)
			fprintf(f, "    stream %s, %llu failed open attempts\n", e->open ? "open" : "NOT OPEN",
				(unsigned long long)e->open_failures);
	}
	for (size_t c = 0; c < st->ncas; c++) {
		const struct scr_cas_stats *k = &st->cas[c];

		fprintf(f, "  CAS %08x ECMG: %s%s, %llu setups (%llu reconnects, %llu on backup), "
			"%llu connect failures, %llu disconnects, %llu channel_error, %llu stream_error, "
			"%llu invalid\n", k->super_cas_id, k->connected ? "connected" : "not connected",
			k->connected && k->on_backup ? " (backup)" : "", (unsigned long long)k->connects,
			(unsigned long long)k->reconnects, (unsigned long long)k->failovers,
			(unsigned long long)k->connect_failures, (unsigned long long)k->disconnects,
			(unsigned long long)k->channel_errors, (unsigned long long)k->stream_errors,
			(unsigned long long)k->bad_msgs);
		for (size_t i = 0; i < k->nstatus; i++)
			fprintf(f, "    error_status 0x%04x: %llu\n", k->err_status[i],
				(unsigned long long)k->err_count[i]);
		if (k->err_other)
			fprintf(f, "    other error_status: %llu\n", (unsigned long long)k->err_other);
	}
	if (st->has_mux)
		fprintf(f, "  MUX: %zu channels, %zu streams, %u kb/s granted; %llu connections "
			"(%llu refused), %llu data_provision (%llu over UDP, %llu refused), %llu invalid "
			"messages, %llu errors sent, %llu received, %llu EMM packets in, %llu dropped, "
			"%llu over the grant\n", st->mux.channels, st->mux.streams, st->mux.allocated_kbps,
			(unsigned long long)st->mux.conns_accepted, (unsigned long long)st->mux.conns_refused,
			(unsigned long long)st->mux.data_provisions, (unsigned long long)st->mux.udp_datagrams,
			(unsigned long long)st->mux.udp_rejected, (unsigned long long)st->mux.msgs_bad,
			(unsigned long long)st->mux.errors_sent, (unsigned long long)st->mux.errors_received,
			(unsigned long long)st->mux.pkts_in, (unsigned long long)st->mux.pkts_dropped,
			(unsigned long long)st->mux.bw_exceeded);
	fprintf(f, "  output windows written early (max delay %u ms): %llu\n", s ? s->cfg.max_delay_ms : 0,
		(unsigned long long)st->window_timeouts);
	free(st);
}

#define JSET(obj, name, val) json_object_set_new(obj, name, json_integer((json_int_t)(val)))

/* "cas": [ per-CAS SCS counters ], "mux": { MUX counters } (if a MUX). */
static int stats_json_cas_mux(json_t *root, const struct scrambler_stats *st)
{
	json_t *arr = json_array(), *m;

	if (!arr)
		return CE_NOMEM;
	json_object_set_new(root, "cas", arr);
	for (size_t c = 0; c < st->ncas; c++) {
		const struct scr_cas_stats *k = &st->cas[c];
		json_t *o = json_object(), *es = json_object();
		char key[8];

		if (!o || !es) {
			json_decref(o);
			json_decref(es);
			return CE_NOMEM;
		}
		json_array_append_new(arr, o);
		JSET(o, "super_cas_id", k->super_cas_id);
		json_object_set_new(o, "connected", json_boolean(k->connected));
		json_object_set_new(o, "on_backup", json_boolean(k->on_backup));
		JSET(o, "connects", k->connects);
		JSET(o, "connect_failures", k->connect_failures);
		JSET(o, "reconnects", k->reconnects);
		JSET(o, "failovers", k->failovers);
		JSET(o, "disconnects", k->disconnects);
		JSET(o, "channel_errors", k->channel_errors);
		JSET(o, "stream_errors", k->stream_errors);
		JSET(o, "bad_msgs", k->bad_msgs);
		JSET(o, "last_error_status", k->last_error_status);
		for (size_t i = 0; i < k->nstatus; i++) {
			snprintf(key, sizeof(key), "0x%04x", k->err_status[i]);
			JSET(es, key, k->err_count[i]);
		}
		if (k->err_other)
			JSET(es, "other", k->err_other);
		json_object_set_new(o, "errors_by_status", es);
	}
	if (!st->has_mux)
		return 0;
	if (!(m = json_object()))
		return CE_NOMEM;
	json_object_set_new(root, "mux", m);
	JSET(m, "conns_accepted", st->mux.conns_accepted);
	JSET(m, "conns_refused", st->mux.conns_refused);
	JSET(m, "conns_closed", st->mux.conns_closed);
	JSET(m, "msgs_in", st->mux.msgs_in);
	JSET(m, "msgs_bad", st->mux.msgs_bad);
	JSET(m, "errors_sent", st->mux.errors_sent);
	JSET(m, "errors_received", st->mux.errors_received);
	JSET(m, "data_provisions", st->mux.data_provisions);
	JSET(m, "udp_datagrams", st->mux.udp_datagrams);
	JSET(m, "udp_rejected", st->mux.udp_rejected);
	JSET(m, "sections_in", st->mux.sections_in);
	JSET(m, "pkts_in", st->mux.pkts_in);
	JSET(m, "pkts_out", st->mux.pkts_out);
	JSET(m, "pkts_dropped", st->mux.pkts_dropped);
	JSET(m, "bw_exceeded", st->mux.bw_exceeded);
	JSET(m, "allocated_kbps", st->mux.allocated_kbps);
	JSET(m, "channels", st->mux.channels);
	JSET(m, "streams", st->mux.streams);
	JSET(m, "queued_pkts", st->mux.queued_pkts);
	return 0;
}

int scrambler_stats_json(const struct scrambler *s, const char *path)
{
	struct scrambler_stats *st = malloc(sizeof(*st));
	json_t *root = NULL, *arr = NULL;
	char *text = NULL;
	int r = CE_NOMEM;

	if (!st)
		return CE_NOMEM;
	scrambler_stats(s, st);
	root = json_object();
	arr = json_array();
	if (!root || !arr)
		goto out;
	JSET(root, "pkts_in", st->pkts_in);
	JSET(root, "pkts_out", st->pkts_out);
	JSET(root, "pkts_scrambled", st->pkts_scrambled);
	JSET(root, "input_errors", st->input_errors);
	JSET(root, "input_resyncs", st->input_resyncs);
	JSET(root, "input_dropped_bytes", st->input_dropped_bytes);
	JSET(root, "already_scrambled", st->already_scrambled);
	JSET(root, "psi_errors", st->psi_errors);
	JSET(root, "pid_conflicts", st->pid_conflicts);
	JSET(root, "nulls_in", st->nulls_in);
	JSET(root, "nulls_replaced", st->nulls_replaced);
	JSET(root, "extra_pkts", st->extra_pkts);
	JSET(root, "insert_dropped", st->insert_dropped);
	JSET(root, "ecm_pkts", st->ecm_pkts);
	JSET(root, "emm_pkts", st->emm_pkts);
	JSET(root, "cat_pkts", st->cat_pkts);
	JSET(root, "pmt_rewrites", st->pmt_rewrites);
	JSET(root, "cp_changes", st->cp_changes);
	JSET(root, "cp_failures", st->cp_failures);
	JSET(root, "clear_pkts_failure", st->clear_pkts_failure);
	JSET(root, "clear_pkts_start", st->clear_pkts_start);
	JSET(root, "pkts_withheld", st->pkts_withheld);
	JSET(root, "stream_time_ms", st->stream_time_ms);
	JSET(root, "ecm_wait_us", st->ecm_wait_us);
	JSET(root, "window_timeouts", st->window_timeouts);
	for (size_t i = 0; i < st->nstreams; i++) {
		const struct scr_stream_stats *e = &st->streams[i];
		json_t *o = json_object();

		if (!o)
			goto out;
		JSET(o, "service_id", e->service_id);
		JSET(o, "super_cas_id", e->super_cas_id);
		JSET(o, "ecm_pid", e->ecm_pid);
		JSET(o, "ecm_stream_id", e->stream_id);
		JSET(o, "ecm_id", e->ecm_id);
		JSET(o, "cw_provision_sent", e->cw_provision_sent);
		JSET(o, "ecm_response_received", e->ecm_response_received);
		JSET(o, "timeouts", e->timeouts);
		JSET(o, "errors", e->errors);
		JSET(o, "ecm_pkts_out", e->ecm_pkts_out);
		JSET(o, "ecm_reps_skipped", e->ecm_reps_skipped);
		JSET(o, "open_failures", e->open_failures);
		json_object_set_new(o, "open", json_boolean(e->open));
		json_array_append_new(arr, o);
	}
	json_object_set(root, "streams", arr);
	if (stats_json_cas_mux(root, st) != 0)
		goto out;
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		goto out;
	r = file_write_atomic(path, text, strlen(text), 0644) == 0 ? 0 : CE_IO;
out:
	free(text);
	json_decref(arr);
	json_decref(root);
	free(st);
	return r;
}
