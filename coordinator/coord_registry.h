/* The device registry table in the model database (see coord_registry.c). */
#ifndef EVO_COORD_REGISTRY_H
#define EVO_COORD_REGISTRY_H

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "evo/core.h"

typedef struct coord_reg_row {
    const char *name, *device_class, *transport, *control_url, *data_url;
    uint64_t memory;
    double gflops;
    const char *info; /* JSON: calibration and links */
} coord_reg_row;

/* Open the database file (created by evo_db_open) and ensure the table. */
evo_status coord_reg_open(const char *path, sqlite3 **out, evo_error *err);
void coord_reg_close(sqlite3 *db);
/* Insert or update a registration (state 'alive'). */
evo_status coord_reg_put(sqlite3 *db, const coord_reg_row *r, evo_error *err);
/* Record a state change ('alive', 'lost', 'offline'). */
evo_status coord_reg_state(sqlite3 *db, const char *name, const char *state, evo_error *err);
/* Append every stored device as a JSON object to array. */
evo_status coord_reg_list(sqlite3 *db, cJSON *array, evo_error *err);

#endif /* EVO_COORD_REGISTRY_H */
