/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SIDs in a Windows PAC's logon information (MS-PAC 2.5 KERB_VALIDATION_INFO, an NDR
 * type-serialized buffer): what AMT authorizes a Kerberos user by against its ACL entries.
 * Pure parsing of untrusted bytes: every length is checked, nothing is trusted.
 */
#ifndef AMTSIM_PAC_H
#define AMTSIM_PAC_H

#include <stddef.h>

#define PAC_SID_STR 192 /* "S-1-<48-bit>-" + 15 x 32-bit values fits */

/**
 * Fills @p sids with the user's SID (domain SID + UserId) first, then the group SIDs
 * (domain + GroupIds), the ExtraSids and the resource groups, at most @p max.
 * @return the number of SIDs, or -1 when the buffer is malformed
 */
int pac_logon_sids(const unsigned char *buf, size_t len, char (*sids)[PAC_SID_STR], int max);

/** A binary SID (@p len bytes) in string form; -1 when malformed. */
int pac_sid_string(const unsigned char *sid, size_t len, char *out, size_t size);

#endif
