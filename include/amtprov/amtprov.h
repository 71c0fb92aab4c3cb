/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file amtprov.h
 * @brief Convenience header: everything a plugin author needs.
 */
#ifndef AMTPROV_AMTPROV_H
#define AMTPROV_AMTPROV_H

#include <amtprov/error.h>
#include <amtprov/log.h>
#include <amtprov/types.h>
#include <amtprov/plugin.h>
#include <amtprov/ca.h>
#include <amtprov/credstore.h>
#include <amtprov/directory.h>
#include <amtprov/netprofile.h>
#include <amtprov/transport.h>

#endif /* AMTPROV_AMTPROV_H */
