/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file log.h
 * @brief Log levels shared by the core and plugins.
 *
 * Plugins never write logs themselves: they call `host->log()` (see plugin.h) and the core
 * adds the context (plugin, instance, device) and routes the line to stderr or syslog.
 */
#ifndef AMTPROV_LOG_H
#define AMTPROV_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, most severe first. Values are stable. */
enum amtprov_log_level {
	AMTPROV_LOG_ERROR = 0,   /**< an operation failed */
	AMTPROV_LOG_WARNING = 1, /**< something is wrong but work goes on */
	AMTPROV_LOG_NOTICE = 2,  /**< significant normal events (device provisioned) */
	AMTPROV_LOG_INFO = 3,    /**< progress */
	AMTPROV_LOG_DEBUG = 4,   /**< detail for developers */
	/**
	 * Protocol bodies and other data that may identify people or hosts. Only emitted when
	 * the build enables AMTPROV_ENABLE_PRIVATE_LOG *and* the run asks for it. Passwords and
	 * keys are never formatted into any log line, at any level.
	 */
	AMTPROV_LOG_PRIVATE = 5,
};

#if defined(__GNUC__)
#define AMTPROV_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define AMTPROV_PRINTF(fmt_idx, arg_idx)
#endif

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_LOG_H */
