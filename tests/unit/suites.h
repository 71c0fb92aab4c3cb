/* SPDX-License-Identifier: Apache-2.0 */
/* Every unit-test suite, once. Each test file exposes `void register_<name>_tests(void)`. */
SUITE(config_table)
SUITE(manifest)
SUITE(store)
SUITE(status)
SUITE(device_state)
SUITE(plugin_host)
SUITE(engine)
SUITE(site)
SUITE(pki)
SUITE(preflight)
SUITE(transport_loop)
SUITE(device_input)
