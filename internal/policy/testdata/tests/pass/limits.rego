package acme.limits

import data.acme.limits.config

too_big if input.max_tokens > config.cap
