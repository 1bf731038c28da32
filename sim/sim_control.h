/* The /_sim control API, the same for every simulated CRM: deals read and
 * changed as a CRM user in fieldsync's field names and canonical values,
 * webhook and API faults, counters, idleness (docs/SIMULATOR.md). It also
 * keeps the API-side counters and fault dice the front-end's REST calls
 * go through. */
#ifndef FIELDSYNC_SIM_SIM_CONTROL_H
#define FIELDSYNC_SIM_SIM_CONTROL_H

#include "sim_store.h"
#include "webhook_sender.h"

#include "net/http_server.h"

#include <stdbool.h>
#include <stdint.h>

/* Most deals one GET /_sim/deals page holds, and its default. */
#define SIM_CONTROL_PAGE_MAX 10000
#define SIM_CONTROL_PAGE_DEFAULT 100
/* Most deals one merge absorbs. */
#define SIM_CONTROL_MERGE_MAX 100

/* What an API call does, whatever the CRM calls it: the keys of
 * api_calls_by_class, so a scenario can count writes on any CRM. */
enum sim_call_class {
    SIM_CALL_READ,   /* reads deals */
    SIM_CALL_WRITE,  /* creates, changes, deletes or merges deals */
    SIM_CALL_SEARCH, /* searches deals */
    SIM_CALL_META,   /* owners, pipelines, fields, the token */
    SIM_CALL_CLASS_COUNT,
};

/* One of the front-end's kinds of API call: a key of
 * api_calls_by_kind. */
struct sim_call_kind {
    const char *name;
    enum sim_call_class class_;
};

struct sim_control_config {
    struct sim_store *store;       /* borrowed */
    struct webhook_sender *sender; /* borrowed */
    /* The front-end's kinds of API call, indexed by its kind numbers. */
    const struct sim_call_kind *call_kinds;
    size_t call_kind_count;
    uint64_t seed; /* of the API fault dice */
    /* The front-end's on_exhaust (sim_serve.h) and its ctx; NULL: POST
     * /_sim/limits/exhaust answers 501. */
    void (*on_exhaust)(void *ctx);
    void *ctx;
};

/* What the API fault dice say for one call. */
enum sim_api_fault {
    SIM_FAULT_NONE,
    SIM_FAULT_5XX,  /* answer 502 or 503 (*status) at once */
    SIM_FAULT_HANG, /* answer, then hold the reply and time out */
};

struct sim_control;

struct sim_control *sim_control_new(const struct sim_control_config *config);
void sim_control_free(struct sim_control *ctl);

/* Ends api_reads_paused and lets held reads go on: the simulator is
 * stopping. */
void sim_control_release_reads(struct sim_control *ctl);

/* True for a path the control API answers (/_sim and below). */
bool sim_control_path(const char *path);
/* The http_on_request callback for those paths; ctx is the control. */
void sim_control_on_request(void *ctx, const struct http_request *req,
                            struct http_response *resp);

/* Counts one API call of that kind (an index into call_kinds); limited
 * when the front-end refused it for a rate limit. */
void sim_control_count_call(struct sim_control *ctl, int kind, bool limited);
/* Counts one API call refused for its credentials; expired when its
 * access token had outlived its lifetime. */
void sim_control_count_refused(struct sim_control *ctl, bool expired);
/* Rolls the API fault dice for an admitted call of that kind; a read
 * waits here first while api_reads_paused is on. */
enum sim_api_fault sim_control_roll_fault(struct sim_control *ctl, int kind,
                                          int *status);

#endif
