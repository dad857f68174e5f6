package acme.net

allow if http.send({"method": "GET", "url": "http://example.invalid"}).status_code == 200
