"""The simulated estate behind the flow logs: accounts, VPCs, subnets, network interfaces,
and the public addresses each VPC talks to. A pure function of the seed.

Public addresses come from blocks that an offline IP-to-country database (iptocc, the
RIRs' delegations) places wholly in one country, so a geo lookup of any generated
address gives the country it was drawn for. Each VPC talks to a fixed set of countries
(always its home country and the US, where the AWS endpoints are); anomalies that must
look new draw from the countries outside that set.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import numpy as np

Role = Literal["web", "bastion", "rdp", "app", "db", "dns", "idle"]
Format = Literal["v2", "v5"]

# country: (IPv4 blocks, IPv6 blocks); each block checked wholly inside the country.
COUNTRY_BLOCKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "US": (("104.16.0.0/13", "8.8.0.0/16"), ("2607:f8b0::/32", "2001:4860::/32")),
    "GB": (("81.2.64.0/18", "86.128.0.0/10"), ("2a00:23c0::/27",)),
    "DE": (("79.192.0.0/10", "217.224.0.0/11"), ("2003::/19",)),
    "FR": (("86.192.0.0/11",), ("2a01:c800::/22",)),
    "JP": (("133.0.0.0/8", "60.32.0.0/12"), ("2400:4000::/22",)),
    "CN": (("114.240.0.0/12", "123.112.0.0/12"), ("240e::/20",)),
    "KR": (("175.192.0.0/10", "211.32.0.0/12"), ("2001:2d8::/32",)),
    "BR": (("179.208.0.0/12", "179.96.0.0/13"), ("2804:14c::/32",)),
    "IN": (("117.192.0.0/10", "59.88.0.0/13"), ("2401:4900::/32",)),
    "AU": (("1.120.0.0/13", "101.160.0.0/11"), ("2001:8000::/20",)),
    "CA": (("70.24.0.0/13", "142.112.0.0/12"), ("2607:fea8::/32",)),
    "RU": (("95.24.0.0/13", "5.136.0.0/13"), ("2a00:1fa0::/29",)),
    "NL": (("77.160.0.0/12", "84.24.0.0/13"), ("2001:610::/32",)),
    "SE": (("78.64.0.0/12", "81.224.0.0/12"), ("2a02:aa0::/29",)),
    "IT": (("79.0.0.0/10", "87.0.0.0/12"), ("2001:b07::/32",)),
    "ES": (("80.24.0.0/13", "88.0.0.0/11"), ("2a0c:5a80::/29",)),
    "MX": (("189.128.0.0/10",), ("2806:1000::/24",)),
    "SG": (("116.86.0.0/15",), ("2406:3003::/32",)),
    "PL": (("83.0.0.0/11", "79.184.0.0/13"), ("2a01:110f::/32",)),
    "ZA": (("105.0.0.0/12", "41.0.0.0/11"), ()),
    "TR": (("78.160.0.0/11", "88.224.0.0/11"), ()),
    "ID": (("36.64.0.0/11", "114.120.0.0/13"), ()),
    "NG": (("105.112.0.0/12", "197.210.0.0/16"), ()),
    "CH": (("85.0.0.0/13", "83.76.0.0/14"), ()),
    "AR": (("181.8.0.0/13",), ()),
}
AMAZON_BLOCK, S3_BLOCK = "3.208.0.0/12", "52.216.0.0/15"  # both in the US
PUBLIC_RESOLVERS = ("8.8.8.8", "8.8.4.4")
# region: (az-id prefix, zone numbers, home country, UTC offset of its users' day)
REGIONS: dict[str, tuple[str, tuple[int, ...], str, int]] = {
    "us-east-1": ("use1", (1, 2, 4, 5, 6), "US", -5),
    "eu-west-1": ("euw1", (1, 2, 3), "GB", 0),
    "eu-central-1": ("euc1", (1, 2, 3), "DE", 1),
    "ap-northeast-1": ("apne1", (1, 2, 4), "JP", 9),
    "ap-southeast-2": ("apse2", (1, 2, 3), "AU", 10),
    "sa-east-1": ("sae1", (1, 2, 3), "BR", -3),
    "us-west-2": ("usw2", (1, 2, 3, 4), "US", -8),
}
LINUX_PORTS, WINDOWS_PORTS = (32768, 28232), (49152, 16384)  # ephemeral (first, count)


@dataclass(frozen=True)
class Eni:
    eni_id: str
    role: Role
    subnet_id: str
    az_id: str
    instance_id: str  # "-" for an interface without an instance (Lambda, endpoint)
    ipv4: int  # index into Vpc.addresses
    ipv6: int | None
    windows: bool  # a Windows host: its own connections use Windows' ephemeral ports


@dataclass(frozen=True)
class Pool:
    """A run of public addresses in ``Vpc.addresses``; ``by_country[i]`` is one of them
    in ``Vpc.countries[i]`` (empty for single-country pools)."""

    first: int
    size: int
    by_country: tuple[int, ...] = ()


@dataclass(frozen=True)
class Vpc:
    index: int
    account_id: str
    vpc_id: str
    flow_log_id: str
    region: str
    cidr: str
    countries: tuple[str, ...]  # every country its public peers come from
    utc_offset: int
    share: float  # of the estate's flows
    format: Format
    enis: tuple[Eni, ...]
    addresses: tuple[str, ...]
    windows_os: tuple[bool, ...]  # per address: uses Windows' ephemeral ports
    pools: dict[str, Pool]

    def role(self, role: Role) -> list[int]:
        return [i for i, eni in enumerate(self.enis) if eni.role == role]


def hex_id(rng: np.random.Generator, prefix: str) -> str:
    return prefix + rng.bytes(9).hex()[:17]


def public_address(rng: np.random.Generator, country: str, *, v6: bool = False) -> str:
    v4_blocks, v6_blocks = COUNTRY_BLOCKS[country]
    blocks = v6_blocks if v6 and v6_blocks else v4_blocks
    return address_in(rng, blocks[int(rng.integers(len(blocks)))])


def address_in(rng: np.random.Generator, block: str) -> str:
    """A host address inside ``block`` (never its first or last, which some stacks drop)."""
    net = ipaddress.ip_network(block)
    offset = int.from_bytes(rng.bytes(16), "big") % (net.num_addresses - 2)
    return str(net[1 + offset])


def build_estate(
    seed: int, accounts: int, vpcs_per_account: int, formats: Format | Literal["mixed"]
) -> list[Vpc]:
    rng = np.random.default_rng([seed, 1])
    regions = list(REGIONS)
    sizes = rng.uniform(0.6, 1.4, accounts * vpcs_per_account)
    vpcs: list[Vpc] = []
    for a in range(accounts):
        account_id = str(int(rng.integers(10**11, 10**12)))
        home_region = regions[(a * 3 + int(rng.integers(len(regions)))) % len(regions)]
        for v in range(vpcs_per_account):
            index = a * vpcs_per_account + v
            region = home_region if v % 2 == 0 else regions[int(rng.integers(len(regions)))]
            # Mixed alternates, so every account has at least one of each when it has two.
            fmt: Format = formats if formats != "mixed" else ("v2", "v5")[index % 2]
            share = float(sizes[index] / sizes.sum())
            vpcs.append(_vpc(rng, index, account_id, region, fmt, share))
    return vpcs


def _vpc(
    rng: np.random.Generator, index: int, account_id: str, region: str, fmt: Format, share: float
) -> Vpc:
    az_prefix, zones, home, utc_offset = REGIONS[region]
    others = [c for c in COUNTRY_BLOCKS if c not in {home, "US"}]
    picked = rng.choice(others, size=int(rng.integers(6, 11)), replace=False)
    countries = tuple(dict.fromkeys([home, "US", *picked.tolist()]))
    # 10.x/16 and 172.16-31.x/16 alternate, so the two private ranges both occur.
    octets = (10, index % 256) if index % 2 == 0 else (172, 16 + index % 16)
    cidr = f"{octets[0]}.{octets[1]}.0.0/16"
    v6_prefix = f"2600:1f{int(rng.integers(16, 32)):02x}:{int(rng.integers(1, 65535)):x}"
    addresses: list[str] = []
    windows_os: list[bool] = []

    def add(address: str, windows: bool = False) -> int:
        addresses.append(address)
        windows_os.append(windows)
        return len(addresses) - 1

    enis: list[Eni] = []
    used_hosts: set[tuple[int, int]] = set()
    plan: list[tuple[Role, int]] = [
        ("web", int(rng.integers(2, 5))),
        ("bastion", 1),
        ("rdp", int(rng.integers(0, 2))),
        ("app", int(rng.integers(3, 8))),
        ("db", int(rng.integers(1, 4))),
        ("dns", 1),
        ("idle", int(rng.integers(1, 3))),
    ]
    subnets = [(hex_id(rng, "subnet-"), zones[s % len(zones)]) for s in range(4)]
    for role, count in plan:
        for _ in range(count):
            # Subnets 0-1 are public (internet-facing roles), 2-3 private.
            s = (
                int(rng.integers(0, 2))
                if role in {"web", "bastion", "rdp"}
                else 2 + int(rng.integers(0, 2))
            )
            host = _free_host(rng, s, used_hosts)
            windows = role == "rdp"
            ipv4 = add(f"{octets[0]}.{octets[1]}.{s}.{host}", windows)
            has_v6 = role in {"web", "app"} and rng.random() < 0.5
            ipv6 = add(f"{v6_prefix}:{s:x}00:{_v6_host(rng)}", windows) if has_v6 else None
            enis.append(
                Eni(
                    eni_id=hex_id(rng, "eni-"),
                    role=role,
                    subnet_id=subnets[s][0],
                    az_id=f"{az_prefix}-az{subnets[s][1]}",
                    instance_id="-" if role == "idle" else hex_id(rng, "i-"),
                    ipv4=ipv4,
                    ipv6=ipv6,
                    windows=windows,
                )
            )
    weights = np.array([4.0 if c == home else 2.0 if c == "US" else 1.0 for c in countries])
    weights /= weights.sum()

    def pool(size: int, v6: bool = False, windows_share: float = 0.25) -> Pool:
        eligible = [i for i, c in enumerate(countries) if not v6 or COUNTRY_BLOCKS[c][1]]
        counts = np.maximum(1, np.round(weights[eligible] / weights[eligible].sum() * size))
        first, by_country = len(addresses), [0] * len(countries)
        for i, n in zip(eligible, counts.astype(int).tolist(), strict=True):
            by_country[i] = len(addresses)
            for _ in range(n):
                add(public_address(rng, countries[i], v6=v6), rng.random() < windows_share)
        for i in set(range(len(countries))) - set(eligible):
            by_country[i] = by_country[eligible[0]]
        return Pool(first, len(addresses) - first, tuple(by_country))

    def fixed(found: list[str]) -> Pool:
        first = len(addresses)
        for address in found:
            add(address)
        return Pool(first, len(found))

    pools = {
        "clients": pool(2000),
        "clients6": pool(400, v6=True),
        "noise": pool(400, windows_share=0.0),
        "saas": pool(80, windows_share=0.0),
        "saas6": pool(20, v6=True, windows_share=0.0),
        "ntp": pool(8, windows_share=0.0),
        "admins": fixed([public_address(rng, home) for _ in range(4)]),
        "amazon": fixed([address_in(rng, AMAZON_BLOCK) for _ in range(30)]),
        "s3": fixed([address_in(rng, S3_BLOCK) for _ in range(16)]),
        "resolvers": fixed(list(PUBLIC_RESOLVERS)),
    }
    return Vpc(
        index=index,
        account_id=account_id,
        vpc_id=hex_id(rng, "vpc-"),
        flow_log_id=hex_id(rng, "fl-"),
        region=region,
        cidr=cidr,
        countries=countries,
        utc_offset=utc_offset,
        share=share,
        format=fmt,
        enis=tuple(enis),
        addresses=tuple(addresses),
        windows_os=tuple(windows_os),
        pools=pools,
    )


def _free_host(rng: np.random.Generator, subnet: int, used: set[tuple[int, int]]) -> int:
    # AWS reserves the first four addresses of a subnet and its last.
    while True:
        host = int(rng.integers(4, 255))
        if (subnet, host) not in used:
            used.add((subnet, host))
            return host


def _v6_host(rng: np.random.Generator) -> str:
    return ":".join(f"{int(x):x}" for x in rng.integers(1, 65536, 4))
