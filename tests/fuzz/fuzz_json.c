/*
 * fuzz_json.c: a libFuzzer target for the paths that take a user's JSON.
 * The first byte of an input picks one of three (its value modulo 3; the
 * seeds use '0', '1', '2'):
 *
 *  0  the text round trip: the rest, parsed as the projector parses a body,
 *     is written as a StartWorkflow's input the way keel_client_start()
 *     writes it, encoded, decoded, and must come back equal; as recorded
 *     input, result and failure details it must come out of the
 *     projector's fold (proj_wf_json) equal, and the state's text written
 *     directly (proj_wf_text) must be jansson's dump of it byte for byte.
 *     The rest taken as a string
 *     (when it is UTF-8, NUL bytes included) must survive the codec too.
 *  1  the client's argument checks: NUL-separated fields (verb, workflow
 *     ID, name, JSON, run ID, command ID, reuse and conflict policies,
 *     signal name and payload, "exec,run,wait" numbers) go to
 *     keel_client_start/signal/cancel/terminate on a client whose broker
 *     does not exist. The answer must be one of the documented errors, a
 *     workflow ID the API forbids must be KEEL_ERR_INVALID_ARG, and an
 *     error always comes with a message.
 *  2  the fold: event lines (fold_text.h: tab-separated event type
 *     without "keel.history.", workflow ID, run ID, seq, then up to four
 *     fields whose meaning depends on the type) are applied to a fresh fold,
 *     which must keep its books straight (status counts add up, IDs in
 *     order, each found by its ID) and render every workflow as JSON, its
 *     text written directly the same as jansson's dump.
 *     (Events after a run's closing event are applied too, so a closed
 *     run may show what they started as pending; only a corrupt history
 *     holds such events, so that is not checked.)
 *
 * A broken promise aborts, which libFuzzer reports as a crash. Built only
 * with KEEL_FUZZ=ON under clang (tests/fuzz/CMakeLists.txt); run it with
 * tests/fuzz/run-fuzz.sh.
 */
#include "fold_text.h"
#include "keel/keel.h"
#include "proj.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 12

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static keel_client_t *client;

static void broken(const char *what, const char *detail)
{
        fprintf(stderr, "fuzz_json: %s: %s\n", what, detail);
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        keel_config_t *cfg = keel_config_new();
        char err[512] = "";

        (void)argc;
        (void)argv;
        keel_log_set_level(KEEL_LOG_ERROR);
        /* Nothing listens on port 1: a command that passes the checks
         * fails its metadata request after timeout.ms. */
        if (!cfg ||
            keel_config_set(cfg, "bootstrap", "127.0.0.1:1", NULL, NULL, 0) ||
            keel_config_set(cfg, "timeout.ms", "1", NULL, NULL, 0) ||
            keel_config_set(cfg, "kafka.log_level", "0", NULL, NULL, 0))
                broken("set-up", "configuration");
        client = keel_client_new(cfg, err, sizeof(err));
        keel_config_destroy(cfg);
        if (!client)
                broken("set-up", err);
        return 0;
}

/* ---- 0: the text round trip ------------------------------------------- */

/* rec encoded as `type` and decoded again; the decoded record. */
static json_t *codec_trip(const char *type, const json_t *rec)
{
        unsigned char *buf = NULL;
        size_t len = 0;
        const char *type2 = NULL;
        json_t *back = NULL;
        char err[512] = "";

        if (keel_codec_encode(type, rec, &buf, &len, err, sizeof(err)))
                broken("a record with user text does not encode", err);
        if (keel_codec_decode(buf, len, &type2, &back, err, sizeof(err)))
                broken("a record with user text does not decode", err);
        free(buf);
        if (strcmp(type, type2))
                broken("decoded as another type", type2);
        return back;
}

static json_t *start_record(json_t *input)
{
        json_t *rec = json_pack(
            "{ss ss sI ss ss ss ss so}", "workflow_id", "fuzz", "command_id",
            "c1", "ts", (json_int_t)1795000000000LL, "workflow_type", "t",
            "id_reuse_policy", "ALLOW_DUPLICATE", "id_conflict_policy", "FAIL",
            "signal_payload", "null", "input", input);
        if (!rec)
                broken("out of memory", "StartWorkflow");
        return rec;
}

/* Feed `f` one event of run "r1" of workflow id. */
static void fold_feed(proj_fold_t *f, const char *type, const char *id, int seq,
                      json_t *fields)
{
        json_t *ev =
            json_pack("{ss s{ss ss si si sI}}", "type", type, "record",
                      "workflow_id", id, "run_id", "r1", "seq", seq, "epoch", 1,
                      "ts", (json_int_t)1795000000000LL + seq);
        if (!ev)
                broken("out of memory", "event");
        json_object_update(json_object_get(ev, "record"), fields);
        json_decref(fields);
        proj_fold_apply(f, ev);
        json_decref(ev);
}

/* The JSON text `s` recorded as input, result and failure details must
 * come out of the fold as `v` (when v is not NULL) or at least as JSON. */
static void fold_trip(const char *s, const json_t *v)
{
        proj_fold_t f;
        json_t *done, *failed, *x;
        char *dumped, *direct;

        if (proj_fold_init(&f))
                broken("out of memory", "fold");
        fold_feed(&f, "keel.history.WorkflowStarted", "a", 1,
                  json_pack("{ss ss}", "workflow_type", "t", "input", s));
        fold_feed(&f, "keel.history.WorkflowCompleted", "a", 2,
                  json_pack("{ss}", "result", s));
        fold_feed(&f, "keel.history.WorkflowStarted", "b", 1,
                  json_pack("{ss ss}", "workflow_type", "t", "input", s));
        fold_feed(&f, "keel.history.WorkflowFailed", "b", 2,
                  json_pack("{s{ss ss ss sb}}", "failure", "type", "E",
                            "message", s, "details", s, "non_retryable", 0));
        done = proj_wf_json(proj_fold_get(&f, "a"));
        failed = proj_wf_json(proj_fold_get(&f, "b"));
        if (!done || !failed)
                broken("a workflow does not render as JSON", s);
        dumped = json_dumps(done, JSON_COMPACT);
        direct = proj_wf_text(proj_fold_get(&f, "a"));
        if (!dumped || !direct || strcmp(dumped, direct))
                broken("the state's text is not jansson's dump", s);
        free(dumped);
        free(direct);
        x = json_object_get(json_object_get(failed, "failure"), "details");
        if (v && (!json_equal(json_object_get(done, "input"), v) ||
                  !json_equal(json_object_get(done, "result"), v) ||
                  !json_equal(x, v)))
                broken("the fold changed recorded JSON text", s);
        json_decref(done);
        json_decref(failed);
        proj_fold_destroy(&f);
}

static void text_round_trip(const char *text, size_t len)
{
        json_error_t e;
        json_t *v, *raw, *back;

        /* As a body: what the projector accepts as a workflow input. */
        v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        if (v) {
                /* As keel_client_start() writes it. */
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                json_t *again;
                if (!s)
                        broken("parsed JSON does not dump", text);
                json_t *rec = start_record(json_string(s));
                back = codec_trip("keel.inbox.StartWorkflow", rec);
                json_decref(rec);
                again = json_loads(
                    json_string_value(json_object_get(back, "input")),
                    JSON_DECODE_ANY, &e);
                if (!again || !json_equal(again, v))
                        broken("the input changed on its way through the "
                               "codec",
                               s);
                fold_trip(s, v);
                json_decref(again);
                json_decref(back);
                free(s);
                json_decref(v);
        }
        /* As text: any UTF-8, NUL bytes and all. */
        raw = json_stringn(text, len);
        if (raw) {
                json_t *rec = start_record(json_incref(raw));
                back = codec_trip("keel.inbox.StartWorkflow", rec);
                if (!json_equal(json_object_get(back, "input"), raw))
                        broken("a string changed on its way through the codec",
                               text);
                json_decref(back);
                json_decref(rec);
                fold_trip(json_string_value(raw), NULL);
                json_decref(raw);
        }
}

/* ---- 1: the client's argument checks ---------------------------------- */

/* A JSON argument from field s: parsed, else the text as a string, else
 * NULL (absent, or not UTF-8). New reference. */
static json_t *json_arg(const char *s)
{
        json_t *v;
        if (!s)
                return NULL;
        v = json_loads(s, JSON_DECODE_ANY, NULL);
        return v ? v : json_string(s);
}

/* Must the client refuse this workflow ID (keel/client.h)? */
static int forbidden_id(const char *id)
{
        json_t *j;
        if (!id || !*id || id[0] == '!' || strlen(id) > KEEL_WORKFLOW_ID_MAX)
                return 1;
        j = json_string(id); /* jansson's test of UTF-8 */
        json_decref(j);
        return j == NULL;
}

static void client_call(const char *const *f)
{
        keel_start_options_t o = {0};
        const char *verb = f[0] ? f[0] : "s";
        json_t *js = json_arg(f[3]), *payload = json_arg(f[9]);
        char err[512], run[KEEL_UUID_SIZE];
        long long exec = 0, rto = 0, wait = 0;
        int rc;

        if (f[10])
                sscanf(f[10], "%lld,%lld,%lld", &exec, &rto, &wait);
        /* A real wait would read from the broker that is not there. */
        wait = wait > 0 ? 0 : wait;
        memset(err, 'x', sizeof(err));
        switch (*verb) {
        case 'g':
                rc = keel_client_signal(client, f[1], f[4], f[2], js, (int)wait,
                                        err, sizeof(err));
                break;
        case 'c':
                rc = keel_client_cancel(client, f[1], f[4], f[2], (int)wait,
                                        err, sizeof(err));
                break;
        case 't':
                rc = keel_client_terminate(client, f[1], f[4], f[2], js,
                                           (int)wait, err, sizeof(err));
                break;
        default:
                o.command_id = f[5];
                o.id_reuse_policy = f[6];
                o.id_conflict_policy = f[7];
                o.signal_name = f[8];
                o.signal_payload = payload;
                o.execution_timeout_ms = exec;
                o.run_timeout_ms = rto;
                o.wait_ms = (int)wait;
                rc = keel_client_start(client, f[1], f[2], js, &o, run, err,
                                       sizeof(err));
                if (strnlen(run, sizeof(run)) == sizeof(run))
                        broken("run_id not terminated", f[1] ? f[1] : "");
                break;
        }
        switch (rc) {
        case KEEL_ERR_INVALID_ARG:
        case KEEL_ERR_TOO_LARGE:
        case KEEL_ERR_TRANSPORT:
        case KEEL_ERR_KAFKA:
                break;
        default: /* KEEL_OK included: there is no broker */
                broken("unexpected answer", keel_err_name(rc));
        }
        if (forbidden_id(f[1]) && rc != KEEL_ERR_INVALID_ARG)
                broken("a forbidden workflow ID passed the checks",
                       keel_err_name(rc));
        if (strnlen(err, sizeof(err)) == sizeof(err) || !err[0])
                broken("an error without a message", keel_err_name(rc));
        json_decref(js);
        json_decref(payload);
}

/* ---- 2: the fold -------------------------------------------------------- */

static void fold_check(proj_fold_t *f)
{
        proj_wf_t **wfs;
        size_t n;
        uint64_t total = 0;

        if (proj_fold_ordered(f, &wfs, &n))
                broken("out of memory", "ordered");
        if (n != f->count)
                broken("the ordered list lost workflows", "");
        for (int i = 0; i < PROJ_NSTATUS; i++)
                total += f->by_status[i];
        if (total != f->count)
                broken("status counts do not add up to the workflows", "");
        for (size_t i = 0; i < n; i++) {
                proj_wf_t *wf = wfs[i];
                json_t *full, *sum;
                char *text, *direct;
                if (i && strcmp(wfs[i - 1]->id, wf->id) >= 0)
                        broken("workflows out of order", wf->id);
                if (proj_fold_get(f, wf->id) != wf)
                        broken("a listed workflow is not found", wf->id);
                if ((int)wf->status < 0 || wf->status >= PROJ_NSTATUS)
                        broken("a status out of range", wf->id);
                full = proj_wf_json(wf);
                sum = proj_wf_summary_json(wf);
                text = full ? json_dumps(full, JSON_COMPACT) : NULL;
                if (!full || !sum || !text)
                        broken("a workflow does not render as JSON", wf->id);
                direct = proj_wf_text(wf);
                if (!direct || strcmp(text, direct))
                        broken("the state's text is not jansson's dump",
                               wf->id);
                free(direct);
                free(text);
                json_decref(full);
                json_decref(sum);
        }
}

static void fold_events(char *text)
{
        proj_fold_t f;

        if (proj_fold_init(&f))
                broken("out of memory", "fold");
        fuzz_fold_text(&f, text);
        fold_check(&f);
        proj_fold_destroy(&f);
}

/* ---- the target --------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *f[MAX_FIELDS] = {0};
        char *text;
        size_t len, n = 0;

        if (!size)
                return 0;
        len = size - 1;
        text = malloc(len + 1);
        if (!text)
                broken("out of memory", "input");
        memcpy(text, data + 1, len);
        text[len] = '\0';
        switch (data[0] % 3) {
        case 0:
                text_round_trip(text, len);
                break;
        case 1:
                f[n++] = text;
                for (size_t i = 0; i < len && n < MAX_FIELDS; i++)
                        if (!text[i])
                                f[n++] = text + i + 1;
                client_call(f);
                break;
        default:
                fold_events(text);
                break;
        }
        free(text);
        return 0;
}
