package acme.limits_test

import data.acme.limits

test_over_cap if limits.too_big with input as {"max_tokens": 101}

test_at_cap if not limits.too_big with input as {"max_tokens": 100}

test_config_from_data_file if data.acme.limits.config.cap == 100
