/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file store_sync.h
 * @brief The write-ahead barrier: durable records synced off the event loop (issue 13).
 *
 * R-PROV-13 (docs/database.md, "Durability"): a pending operation or a certificate must be
 * on disk before amtprovd acts on what it protects (asks AMT to generate a key or take a
 * password, asks a CA to sign, installs a certificate). Syncing it inside the COMMIT that
 * writes it (fdatasync of the WAL) put ~4 fsyncs per device on the event-loop thread, each
 * stalling every device in flight.
 *
 * With deferred syncing (store_defer_sync(), amtprovd's store), such a COMMIT only writes
 * the WAL, which is enough for a process crash (the OS has the pages), and takes a ticket:
 * a number that grows with each deferred durable commit. One syncer thread fdatasyncs the
 * files with deferred commits and then publishes the highest ticket it covered (group
 * commit: one fdatasync covers every commit written before it started). Every way out of
 * the process that acts on a device or a CA waits for the ticket current when the action
 * was asked for: a transport call starts only once it passed (core/plugin/transport_loop.c,
 * on the loop, without blocking it), a job on the engine's worker pool runs only once it
 * passed (core/flow/engine.c, blocking the worker). So the order "record on disk, then
 * act" is kept, and the loop never waits for a disk.
 *
 * A failed fdatasync is final (after an EIO Linux may report the next one as a success
 * although the data is lost): every ticket from then on fails, and the actions waiting for
 * one fail with AMTPROV_E_IO instead of acting on an unrecorded promise.
 */
#ifndef AMTPROV_CORE_STORE_SYNC_H
#define AMTPROV_CORE_STORE_SYNC_H

#include <stdint.h>

struct store_sync_src;

/** The ticket an action asked for now must wait for; 0 when nothing is waiting for a sync. */
uint64_t store_sync_ticket(void);

/** 1: every commit up to @p ticket is on disk (or @p ticket is 0); 0: not yet; -1: a sync
 * failed (final). Never blocks. */
int store_sync_passed(uint64_t ticket);

/** Blocks (never on the event loop) until store_sync_passed(@p ticket) is not 0; returns it. */
int store_sync_wait(uint64_t ticket);

/** Calls @p fn(@p ctx) from the syncer thread after each sync (success or failure), so an
 * event loop can wake up (event_active is thread safe). @return 0, -1 on no memory. */
int store_sync_watch(void (*fn)(void *ctx), void *ctx);
void store_sync_unwatch(void (*fn)(void *ctx), void *ctx);

/* For the back end: a database whose deferred commits (in its WAL, @p db_path "-wal") the
 * syncer syncs (one per file, shared by its handles; the syncer thread runs while any
 * exists). */
struct store_sync_src *store_sync_src_get(const char *db_path);
void store_sync_src_put(struct store_sync_src *src);
/** A durable commit was written to @p src: wakes the syncer. @return the commit's ticket. */
uint64_t store_sync_defer(struct store_sync_src *src);
/** A plugin appended a record that must survive power loss to @p path (a credential
 * store's journal): the syncer syncs it with the next round, before the next action
 * (host API sync_later). Only on the thread that asked for deferred syncing (the event
 * loop, where every later action is gated). @return 0, or -1: sync it yourself. */
int store_sync_later(const char *path);
/** 1 when the caller is the thread whose durable commits are deferred. */
int store_sync_on_loop(void);
/** The WAL of @p src grew past SQLite's checkpoint threshold: the syncer checkpoints it
 * (PASSIVE, its own connection) instead of the committing thread. */
void store_sync_checkpoint(struct store_sync_src *src);
/** Tests: 1 holds the syncer before its next round (tickets do not pass), 0 lets it go. */
void store_sync_hold(int on);
/** The text of the failure once store_sync_passed() returned -1 ("" before). */
const char *store_sync_error(void);

#endif
