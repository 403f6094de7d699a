"""The test suite, a package: its folders are named after the packages they test
(tests/operator, tests/site), which would otherwise be imported as the standard library's
`operator` and `site`."""
