/* The small simulator store configuration shared by tests and fuzzing. */
#include "sim_fixture.h"

#include "base/alloc.h"

static const struct sim_stage stages[] = {
    {"s-open", "Open", "Prospecting", 0.1, false},
    {"s-work", "Working", "Engaging", 0.4, false},
    {"s-won", "Won", "Won", 1.0, true},
    {"s-lost", "Lost", "Lost", 0.0, true},
};
static const struct sim_pipeline pipeline = {"p1", "Pipe", stages, 4};

static char *deal_id(void *ctx, size_t n)
{
    return xasprintf("d%zu", n + 1);
}

static char *owner_id(void *ctx, size_t n)
{
    return xasprintf("o%zu", n + 1);
}

static char *user_id(void *ctx, size_t n)
{
    return xasprintf("u%zu", n + 1);
}

struct sim_store_config sim_fixture_config(bool mint)
{
    struct sim_store_config config = {
        .pipeline = &pipeline,
        .deal_id = deal_id,
        .owner_id = owner_id,
        .user_id = user_id,
        .merge_mints_id = mint,
    };
    return config;
}
