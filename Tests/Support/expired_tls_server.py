#!/usr/bin/env python3
"""An HTTPS server on loopback whose certificate expired yesterday, or
expires in DAYS days.

usage: expired_tls_server.py DIR [DAYS]   -> prints "port N" once listening;
exits when its parent goes away. The certificate and key are made in DIR.
"""
import datetime, http.server, os, ssl, sys, threading, time
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

d = sys.argv[1]
days_left = float(sys.argv[2]) if len(sys.argv) > 2 else -1
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now + datetime.timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256()))
open(f"{d}/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(f"{d}/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

class H(http.server.BaseHTTPRequestHandler):
    def do_OPTIONS(self):
        self.send_response(204); self.send_header("Tus-Resumable", "1.0.0"); self.send_header("Tus-Version", "1.0.0"); self.end_headers()
    def log_message(self, *a): pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{d}/cert.pem", f"{d}/key.pem")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(f"port {srv.server_address[1]}", flush=True)
parent = os.getppid()
def watch():
    while os.getppid() == parent: time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
srv.serve_forever()
