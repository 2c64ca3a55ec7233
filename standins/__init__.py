"""Stand-ins for outside services, speaking their real protocols on loopback.

Used by the tests, the benchmarks and the local sandbox; never by production code.
"""
