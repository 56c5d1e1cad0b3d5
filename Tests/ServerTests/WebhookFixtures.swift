// Webhook payloads as real senders send them.
//
// The registry envelopes were captured from Debian's docker-registry 2.8.2 (CNCF Distribution)
// with a notification endpoint, while pushing demo/web:1.2.3 over the registry API, pulling it,
// and pushing the same manifest again by digest. The bytes are as the registry sent them,
// with `Content-Type: application/vnd.docker.distribution.events.v1+json` and
// `User-Agent: Go-http-client/1.1`.

enum WebhookFixtures {
    static let registryContentType = "application/vnd.docker.distribution.events.v1+json"
    static let registryUserAgent = "Go-http-client/1.1"

    /// A manifest pushed with tag 1.2.3: the event Wharf acts on.
    static let registryManifestPushByTag = #"""
{
   "events": [
      {
         "id": "2e8928ae-2afe-40b8-b628-89fdca507a67",
         "timestamp": "2026-11-29T12:38:50.132654563Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "tag": "1.2.3"
         },
         "request": {
            "id": "0fe82d34-5e87-44a8-9473-c06128763f7c",
            "addr": "127.0.0.1:35344",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      }
   ]
}
"""#

    /// A layer blob pushed: no tag, to be ignored.
    static let registryBlobPush = #"""
{
   "events": [
      {
         "id": "507e6653-c46e-47cd-9056-be4a5ad8ccde",
         "timestamp": "2026-11-29T12:38:48.042339081Z",
         "action": "push",
         "target": {
            "mediaType": "application/octet-stream",
            "size": 31,
            "digest": "sha256:9755d739a8337252f6291d038ad064db4d31a4cd6e156bfdd52c46455fd809dc",
            "length": 31,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/blobs/sha256:9755d739a8337252f6291d038ad064db4d31a4cd6e156bfdd52c46455fd809dc"
         },
         "request": {
            "id": "139cdc10-7183-486c-83b1-d2a984a8cb81",
            "addr": "127.0.0.1:35510",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      }
   ]
}
"""#

    /// `GET /v2/demo/web/manifests/1.2.3`: a pull, which carries a tag too, to be ignored.
    static let registryManifestPull = #"""
{
   "events": [
      {
         "id": "09a39721-5c86-439a-aa9d-fc17de760339",
         "timestamp": "2026-11-29T12:38:52.162832658Z",
         "action": "pull",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "tag": "1.2.3"
         },
         "request": {
            "id": "4e5f37b8-5f5b-400c-a813-0427a43f72fc",
            "addr": "127.0.0.1:35348",
            "host": "127.0.0.1:58321",
            "method": "GET",
            "useragent": "docker/20.10.24 go/go1.19"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      }
   ]
}
"""#

    /// The same manifest pushed again by digest: a push without a tag, to be ignored.
    static let registryManifestPushByDigest = #"""
{
   "events": [
      {
         "id": "83558e92-3049-4e06-9fa1-cd5b0c47cb08",
         "timestamp": "2026-11-29T12:38:52.179646841Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba"
         },
         "request": {
            "id": "2c55dfdb-dcdc-494d-b631-a02a11445e1b",
            "addr": "127.0.0.1:35358",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      }
   ]
}
"""#

    /// An envelope of several events, assembled from the captured ones: a blob push, demo/web:1.2.3,
    /// a pull, demo/api:2.0.0, then demo/web:1.2.4.
    static let registryMixedEnvelope = #"""
{
   "events": [
      {
         "id": "507e6653-c46e-47cd-9056-be4a5ad8ccde",
         "timestamp": "2026-11-29T12:38:48.042339081Z",
         "action": "push",
         "target": {
            "mediaType": "application/octet-stream",
            "size": 31,
            "digest": "sha256:9755d739a8337252f6291d038ad064db4d31a4cd6e156bfdd52c46455fd809dc",
            "length": 31,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/blobs/sha256:9755d739a8337252f6291d038ad064db4d31a4cd6e156bfdd52c46455fd809dc"
         },
         "request": {
            "id": "139cdc10-7183-486c-83b1-d2a984a8cb81",
            "addr": "127.0.0.1:35510",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      },
      {
         "id": "2e8928ae-2afe-40b8-b628-89fdca507a67",
         "timestamp": "2026-11-29T12:38:50.132654563Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "tag": "1.2.3"
         },
         "request": {
            "id": "0fe82d34-5e87-44a8-9473-c06128763f7c",
            "addr": "127.0.0.1:35344",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      },
      {
         "id": "09a39721-5c86-439a-aa9d-fc17de760339",
         "timestamp": "2026-11-29T12:38:52.162832658Z",
         "action": "pull",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "tag": "1.2.3"
         },
         "request": {
            "id": "4e5f37b8-5f5b-400c-a813-0427a43f72fc",
            "addr": "127.0.0.1:35348",
            "host": "127.0.0.1:58321",
            "method": "GET",
            "useragent": "docker/20.10.24 go/go1.19"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      },
      {
         "id": "6b0d7a4e-91c2-4f57-a3d8-2f1e9c0b7d55",
         "timestamp": "2026-11-29T12:38:53.201146022Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/api",
            "url": "http://127.0.0.1:58321/v2/demo/api/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "tag": "2.0.0"
         },
         "request": {
            "id": "c1f0a0e2-5d0b-4f6e-8a43-7f3c1b9e2a10",
            "addr": "127.0.0.1:35344",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      },
      {
         "id": "f4a3c2d1-0b9e-4c8d-9f7a-6e5d4c3b2a19",
         "timestamp": "2026-11-29T12:38:54.010203040Z",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 423,
            "digest": "sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "length": 423,
            "repository": "demo/web",
            "url": "http://127.0.0.1:58321/v2/demo/web/manifests/sha256:3fe16139923ef714be04681d005aabae4ae08886afb1a1a2eeef1b494d2979ba",
            "tag": "1.2.4"
         },
         "request": {
            "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "addr": "127.0.0.1:35344",
            "host": "127.0.0.1:58321",
            "method": "PUT",
            "useragent": "curl/7.88.1"
         },
         "actor": {},
         "source": {
            "addr": "vm:58321",
            "instanceID": "79f4952d-1d1c-4b68-9790-3380a947c57c"
         }
      }
   ]
}
"""#
    /// A Docker Hub push webhook (Docker Hub sends `application/json`), in the shape of the
    /// example in Docker Hub's webhook documentation, for a repository `acme/shop-web`.
    static let dockerHubPush = #"""
{
  "callback_url": "https://registry.hub.docker.com/u/acme/shop-web/hook/21b4b5ib5bi5f2bec2c1i4eeih0242ed1100a/",
  "push_data": {
    "images": [],
    "pushed_at": 1764419930,
    "pusher": "acme-ci",
    "tag": "v2.4.1"
  },
  "repository": {
    "comment_count": 0,
    "date_created": 1730902711,
    "description": "Shop front end",
    "dockerfile": "",
    "full_description": "The shop's web front end, built by CI.",
    "is_official": false,
    "is_private": true,
    "is_trusted": false,
    "name": "shop-web",
    "namespace": "acme",
    "owner": "acme",
    "repo_name": "acme/shop-web",
    "repo_url": "https://hub.docker.com/r/acme/shop-web",
    "star_count": 0,
    "status": "Active"
  }
}
"""#

    /// A Docker Hub push for an official image, whose repo_name has no namespace.
    static let dockerHubOfficialPush = #"""
{"push_data": {"pushed_at": 1764419930, "pusher": "library", "tag": "1.27-alpine"},
 "repository": {"name": "nginx", "namespace": "library", "repo_name": "nginx", "is_official": true}}
"""#
}
