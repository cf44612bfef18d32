/*
 * spoof_udp SRC DST PORT MESSAGE — sends one IPv4 UDP datagram carrying MESSAGE from SRC (any
 * address, not necessarily one of ours) to DST:PORT through a raw socket (IPPROTO_RAW implies
 * IP_HDRINCL: we write the IP header, the kernel fills in its checksum and id). Needs CAP_NET_RAW.
 * Built static by tests/network_test.ts and copied into a container's rootfs, to check that the
 * host end of a veth drops what a container sends with a source address that is not its own.
 * Exit status: 0 sent, 1 a call failed, 2 bad arguments.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s SRC DST PORT MESSAGE\n", argv[0]);
    return 2;
  }
  unsigned char packet[1024];
  struct iphdr *ip = (struct iphdr *)packet;
  struct udphdr *udp = (struct udphdr *)(packet + sizeof *ip);
  size_t len = strlen(argv[4]);
  if (len > sizeof packet - sizeof *ip - sizeof *udp) return 2;
  size_t total = sizeof *ip + sizeof *udp + len;
  memset(packet, 0, sizeof packet);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons((unsigned short)total);
  if (inet_pton(AF_INET, argv[1], &ip->saddr) != 1 || inet_pton(AF_INET, argv[2], &ip->daddr) != 1) return 2;
  udp->source = htons(40000);
  udp->dest = htons((unsigned short)atoi(argv[3]));
  udp->len = htons((unsigned short)(sizeof *udp + len));
  udp->check = 0; /* no checksum: allowed for UDP over IPv4 */
  memcpy(packet + sizeof *ip + sizeof *udp, argv[4], len);

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    perror("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)");
    return 1;
  }
  struct sockaddr_in to = {.sin_family = AF_INET};
  to.sin_addr.s_addr = ip->daddr;
  if (sendto(fd, packet, total, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)total) {
    perror("sendto");
    return 1;
  }
  close(fd);
  return 0;
}
