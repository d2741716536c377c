/* Figures for issue 9: encoding and decoding (with every check) the saved-state envelope of
 * a sandbox with 1, 10, 100 and 1000 containers of two processes each (tests/lib/
 * payload_sample.c: layers, reservations, an exec with an OCI spec and stdin resume state),
 * median of several runs: time per envelope, its size, and the most the decode held
 * allocated.  Next to it, in the same run, the peer it replaces: the GCS client's JSON
 * hand-over (host/gcs_state.h) of the same processes, which carries far less.  Goal: 100
 * containers <= 1 ms each way.  Times are this thread's CPU time (the development machines
 * are shared, and wall time there measures the neighbours); the wall-clock medians are
 * printed too.
 *
 *   payload                   the table
 *   payload --write FILE N    write the envelope of N containers to FILE (fuzz seeds,
 *                             ferryctl payload tests) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "host/ctrl/envelope_save.h"
#include "host/gcs_state.h"
#include "tests/lib/payload_sample.h"
#include "tests/lib/stats.h"

#define RUNS 9

static double clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A point in time on both clocks. */
struct tick {
	double cpu, wall;
};

static struct tick now(void)
{
	return (struct tick){clock_ms(CLOCK_THREAD_CPUTIME_ID), clock_ms(CLOCK_MONOTONIC)};
}

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "bench payload: %s: %s\n", what, e->msg);
	exit(1);
}

/* The GCS client's JSON state of the same processes (what issue 4 hands over today). */
static void json_state(const struct envelope_save *s, struct gcs_client_state *st)
{
	memset(st, 0, sizeof(*st));
	size_t np = envelope_save_processes(s) - s->vm.n_uvm_procs;
	vm_save_to_gcs(&s->vm, st);
	free(st->procs);
	st->procs = xcalloc(np + 1, sizeof(*st->procs));
	for (size_t i = 0; i < s->n_pods; i++)
		for (size_t j = 0; j < s->pods[i].n_containers; j++) {
			const struct container_save *c = &s->pods[i].containers[j];
			for (size_t k = 0; k < c->n_procs; k++)
				process_save_to_gcs(&c->procs[k], c->gcs_container_id,
				                    &st->procs[st->n_procs++]);
		}
}

struct row {
	size_t containers, bytes, peak, json_bytes;
	double enc_ms, dec_ms, json_enc_ms, json_dec_ms; /* CPU */
	double enc_wall, dec_wall;
};

static void measure(size_t n, struct row *r)
{
	struct envelope_save s, back;
	struct err e;
	payload_sample_build(&s, 1, n);
	/* Enough repetitions per run that a run takes about 20 ms. */
	int reps = n >= 1000 ? 1 : n >= 100 ? 5 : n >= 10 ? 50 : 300;
	double enc[RUNS], dec[RUNS], jenc[RUNS], jdec[RUNS], encw[RUNS], decw[RUNS];
	struct buf b;
	buf_init(&b);
	struct gcs_client_state st, st2;
	json_state(&s, &st);
	for (int run = 0; run < RUNS; run++) {
		struct tick t0 = now();
		for (int i = 0; i < reps; i++) {
			buf_reset(&b);
			if (envelope_save_encode_bytes(&s, &b, &e) < 0)
				die("encode", &e);
		}
		struct tick t1 = now();
		struct save_decode_opts o = {0};
		for (int i = 0; i < reps; i++) {
			if (envelope_save_decode_bytes(buf_head(&b), buf_avail(&b), &o, &back, &e) <
			    0)
				die("decode", &e);
			envelope_save_fini(&back);
		}
		struct tick t2 = now();
		char *text = NULL;
		for (int i = 0; i < reps; i++) {
			free(text);
			text = gcs_client_state_to_json(&st);
		}
		struct tick t3 = now();
		for (int i = 0; i < reps; i++) {
			if (gcs_client_state_from_json(text, strlen(text), &st2, &e) < 0)
				die("json decode", &e);
			gcs_client_state_fini(&st2);
		}
		struct tick t4 = now();
		enc[run] = (t1.cpu - t0.cpu) / reps;
		dec[run] = (t2.cpu - t1.cpu) / reps;
		jenc[run] = (t3.cpu - t2.cpu) / reps;
		jdec[run] = (t4.cpu - t3.cpu) / reps;
		encw[run] = (t1.wall - t0.wall) / reps;
		decw[run] = (t2.wall - t1.wall) / reps;
		r->peak = o.peak_memory;
		r->json_bytes = strlen(text);
		free(text);
	}
	r->containers = n;
	r->bytes = buf_avail(&b);
	r->enc_ms = stats_median(enc, RUNS);
	r->dec_ms = stats_median(dec, RUNS);
	r->json_enc_ms = stats_median(jenc, RUNS);
	r->json_dec_ms = stats_median(jdec, RUNS);
	r->enc_wall = stats_median(encw, RUNS);
	r->dec_wall = stats_median(decw, RUNS);
	gcs_client_state_fini(&st);
	buf_fini(&b);
	envelope_save_fini(&s);
}

static int write_envelope(const char *path, size_t n)
{
	struct envelope_save s;
	struct err e;
	struct buf b;
	buf_init(&b);
	payload_sample_build(&s, 1, n);
	if (envelope_save_encode_bytes(&s, &b, &e) < 0)
		die("encode", &e);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf_head(&b), 1, buf_avail(&b), f) != buf_avail(&b) || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	envelope_save_fini(&s);
	buf_fini(&b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--write") == 0)
		return write_envelope(argv[2], strtoul(argv[3], NULL, 10));
	static const size_t sizes[] = {1, 10, 100, 1000};
	struct row rows[4];
	printf("saved-state envelope, 2 processes per container, median of %d runs, CPU ms per "
	       "envelope (wall ms)\n",
	       RUNS);
	printf("%10s %10s %18s %18s %12s | %10s %9s %9s\n", "containers", "bytes", "encode",
	       "decode", "decode peak", "JSON bytes", "JSON enc", "JSON dec");
	for (size_t i = 0; i < 4; i++) {
		struct row *r = &rows[i];
		measure(sizes[i], r);
		printf("%10zu %10zu %8.3f (%7.3f) %8.3f (%7.3f) %11zuK | %10zu %9.3f %9.3f\n",
		       r->containers, r->bytes, r->enc_ms, r->enc_wall, r->dec_ms, r->dec_wall,
		       r->peak / 1024, r->json_bytes, r->json_enc_ms, r->json_dec_ms);
	}
	const struct row *h = &rows[2];
	printf("goal: 100 containers <= 1 ms each way (CPU): encode %.3f ms, decode %.3f ms: %s\n",
	       h->enc_ms, h->dec_ms, h->enc_ms <= 1.0 && h->dec_ms <= 1.0 ? "met" : "MISSED");
	printf("ratio to the JSON hand-over (same run, 100 containers): encode %.2fx, decode "
	       "%.2fx, size %.2fx\n",
	       h->enc_ms / h->json_enc_ms, h->dec_ms / h->json_dec_ms,
	       (double)h->bytes / (double)h->json_bytes);
	return 0;
}
